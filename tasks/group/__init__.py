"""group-v1: S4 composition by a trained MLP (Chughtai et al. 2023), with its checkpoint shipped."""
