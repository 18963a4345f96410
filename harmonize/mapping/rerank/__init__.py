"""harmonize.mapping.rerank."""
