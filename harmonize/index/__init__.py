"""Indexing: one FAISS index per site and model, with its meta.json and staleness checks."""
