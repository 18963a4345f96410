"""Benchmarks: mapping quality against the GEMs (``bench-map``), stage speeds (``bench``)."""
