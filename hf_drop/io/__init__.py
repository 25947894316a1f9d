"""Files hf-drop reads and writes: safe outputs, damaged-file errors, provenance, portable names;
and what it says while it works (logs: the hf_drop logger, progress bars)."""
