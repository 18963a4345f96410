"""Embedding: encoders behind one interface (a ``--model`` spec), the on-disk cache, int8."""
