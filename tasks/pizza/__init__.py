"""Task folder: pizza (work in progress)."""
