"""harmonize.mapping."""
