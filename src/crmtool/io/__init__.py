"""Reading exports into DuckDB and writing outputs atomically."""
