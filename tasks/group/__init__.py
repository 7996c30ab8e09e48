"""Task folder: group (work in progress)."""
