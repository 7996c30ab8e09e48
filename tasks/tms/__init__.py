"""tms-v1: the toy model of superposition (Elhage et al. 2022), trained, with its checkpoint shipped."""
