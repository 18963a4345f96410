"""harmonize.index."""
