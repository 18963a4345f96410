"""harmonize.core."""
