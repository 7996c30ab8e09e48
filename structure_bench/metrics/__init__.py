"""Structure-recovery metrics (SPEC section 2)."""
