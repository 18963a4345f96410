"""harmonize.sites."""
