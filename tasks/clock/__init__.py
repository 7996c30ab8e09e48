"""Task folder: clock (work in progress)."""
