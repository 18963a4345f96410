"""harmonize: map clinical concept codes across hospital sites with embeddings, FAISS and DuckDB."""

__version__ = "0.1.0"
