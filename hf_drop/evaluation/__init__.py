"""Judging a trained model: the class-wise accuracy metric, run reports, plots."""
