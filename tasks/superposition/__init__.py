"""Task folder: superposition (work in progress)."""
