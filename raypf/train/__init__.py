"""`raypf train`: Ray Train over the model core, with sampled epochs streamed from Parquet, tracked in MLflow."""
