"""Task folder: hierarchy-v1 (parent/child features: absorption and hedging)."""
