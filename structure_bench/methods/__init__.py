"""Dictionary learners: the protocol, the registry, and the boundary checks."""

from structure_bench.methods.protocol import Method, check_method, checked_outputs
from structure_bench.methods.registry import (
    builtin_methods,
    check_params,
    get_method,
    list_methods,
    method_import_spec,
    method_parameters,
    method_source,
    register_method,
)

__all__ = [
    "builtin_methods",
    "Method",
    "check_method",
    "check_params",
    "checked_outputs",
    "get_method",
    "list_methods",
    "method_import_spec",
    "method_parameters",
    "method_source",
    "register_method",
]
