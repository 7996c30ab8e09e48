"""Task folder: manifold (work in progress)."""
