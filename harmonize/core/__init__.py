"""Core: config, the one exception tree, the workspace (DuckDB, atomic writes), SQL, results."""
