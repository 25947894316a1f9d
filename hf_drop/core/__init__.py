"""The numpy core: per-class quotas, within-class selection, error intervals, the rule registry.

Nothing here imports torch, datasets or pandas at import time.
"""
