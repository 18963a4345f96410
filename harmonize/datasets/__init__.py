"""harmonize.datasets."""
