"""Built-in tasks, one folder each (card README, code, shipped checkpoint).

Installed as ``structure_bench_tasks``; the ``structure_bench.tasks`` entry point imports this
package, and importing it imports every task folder, whose ``__init__`` calls ``register_task``.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
