"""`raypf tune`: Hyperband (or ASHA) sweeps of `raypf train` with Ray Tune, every trial an MLflow child run."""
