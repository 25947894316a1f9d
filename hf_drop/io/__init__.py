"""Files hf-drop reads and writes: safe outputs, damaged-file errors, provenance, portable names."""
