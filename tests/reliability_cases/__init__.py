"""The reliability matrix's cases, by area (``tests/test_reliability.py`` runs them)."""
