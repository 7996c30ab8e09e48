"""Dictionary learners: the protocol, the registry, and the boundary checks."""

from structure_bench.methods.protocol import (
    CALIBRATION_ROLES, Method, check_method, checked_outputs, not_applicable, training_report,
)
from structure_bench.methods.registry import (
    builtin_methods,
    calibration_methods,
    calibration_role,
    check_params,
    extended_signature,
    get_method,
    list_methods,
    method_import_spec,
    method_parameters,
    method_source,
    register_method,
)

__all__ = [
    "CALIBRATION_ROLES",
    "builtin_methods",
    "calibration_methods",
    "calibration_role",
    "Method",
    "check_method",
    "check_params",
    "checked_outputs",
    "extended_signature",
    "not_applicable",
    "training_report",
    "get_method",
    "list_methods",
    "method_import_spec",
    "method_parameters",
    "method_source",
    "register_method",
]
