"""Task folder: superposition-v1 (sparse features in superposition; the positive control)."""
