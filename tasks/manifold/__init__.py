"""Task folder: manifold-v1 (a continuous 1-D feature on a curve)."""
