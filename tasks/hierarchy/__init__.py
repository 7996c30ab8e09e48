"""Task folder: hierarchy (work in progress)."""
