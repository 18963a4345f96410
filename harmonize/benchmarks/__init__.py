"""harmonize.benchmarks."""
