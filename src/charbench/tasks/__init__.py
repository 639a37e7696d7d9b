"""Inspect tasks: one folder per task with its task, scorer, contract, README and tests.

Each folder's ``__init__`` exports its ``@task`` functions in ``__all__``; they are gathered here by walking the
folders, so adding a task means adding its folder (importing a folder registers its tasks with Inspect).
"""

import importlib
import pkgutil

__all__: list[str] = []
for _folder in sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg):
    _module = importlib.import_module(f"{__name__}.{_folder}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
