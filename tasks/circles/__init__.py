"""Task folder: circles (work in progress)."""
