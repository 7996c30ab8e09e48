"""The pizza tasks: a trained constant-attention transformer (pizza-v1) and the analytic pizza
(pizza-ideal-v1) for (a + b) mod 59. See README.md."""
