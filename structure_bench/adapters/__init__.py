"""Adapters that let other libraries' dictionary learners run as structure_bench methods.

Each adapter imports its library only when fitted, so listing methods never needs the extras.
"""
