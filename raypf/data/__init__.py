"""MLTree schema and reading, sample building, Parquet writing, batching."""
