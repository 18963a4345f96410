"""harmonize.embed."""
