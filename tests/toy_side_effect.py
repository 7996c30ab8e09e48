"""A module with an import-time side effect: verify must not import it unless told to trust it."""

import os

os.environ["TOY_SIDE_EFFECT_IMPORTED"] = "1"


class Evil:
    """Not a structure_bench.Method."""
