"""DRoPFilter, the estimator that chooses the subset, and the saved subset it writes."""
