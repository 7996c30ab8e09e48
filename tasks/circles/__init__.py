"""Task folder: circles-v1 (circular 2-D features mixed with linear features)."""
