"""Task folder: tms (work in progress)."""
