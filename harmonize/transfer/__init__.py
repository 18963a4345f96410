"""harmonize.transfer."""
