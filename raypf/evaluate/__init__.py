"""`raypf evaluate`: batch inference, metrics against the baselines and the rule-based particle flow, plots, report."""
