"""Datasets: the demo's two-site world, ICD-9/ICD-10 with the GEMs, the Bayesian networks."""
