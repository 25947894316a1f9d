"""Datasets in: sources (local, built-in, Hub), labels and identity of columns, carved splits."""
