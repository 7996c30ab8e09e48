"""Built-in baselines."""
