"""Built-in tasks, one folder each (card README, code, shipped checkpoint).

Installed as ``structure_bench_tasks``. Each task is an entry point of the group
``structure_bench.tasks`` in pyproject.toml (task id = ``module:Class``), exactly as an outside
package registers its tasks; nothing here runs on import.
"""
