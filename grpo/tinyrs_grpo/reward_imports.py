"""Custom reward functions named on the command line: ``--reward_funcs my_module.my_reward`` and ``--reward_module``.

``python -m tinyrs_grpo.train`` puts the current folder on the import path, the ``tinyrs-grpo`` console script does
not (its first path entry is the script's own folder). So that both find ``my_module.py`` next to where the command
is run, a module that is not importable is looked up in the current folder too: only for the reward names, without
changing ``sys.path`` (the module is loaded from its file and registered in ``sys.modules`` under its name).
``--reward_module path/to/file.py`` loads a file from anywhere the same way, as module ``file``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any


def _exec_module(name: str, spec: importlib.machinery.ModuleSpec | None, where: str) -> ModuleType:
    """Create, register and run the module of ``spec``; a failing module is unregistered again."""
    if spec is None or spec.loader is None:
        raise ValueError(f"{where}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in user code becomes one line naming the file
        del sys.modules[name]
        raise ValueError(f"{where}: {type(exc).__name__}: {exc}") from exc
    return module


def load_reward_file(path: str) -> ModuleType:
    """Load ``path`` (a .py file) as the module named after the file, so ``--reward_funcs name.func`` finds it.

    Raises:
        ValueError: missing file, a name already taken by another module, or an error while running the file.
    """
    file = Path(path).expanduser().resolve()
    where = f"--reward_module {path}"
    if not file.is_file() or file.suffix != ".py":
        raise ValueError(f"{where}: no such .py file")
    name = file.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == file:
            return loaded
        raise ValueError(f"{where}: the module name {name!r} is already taken by {loaded!r}; rename the file")
    return _exec_module(name, importlib.util.spec_from_file_location(name, file), where)


def load_reward_files(paths: Sequence[str]) -> list[ModuleType]:
    """``load_reward_file`` for every ``--reward_module`` path."""
    return [load_reward_file(path) for path in paths]


def _import_from_cwd(top: str) -> ModuleType | None:
    """Load the top-level module or package ``top`` from the current folder; None when it is not there."""
    spec = importlib.machinery.PathFinder.find_spec(top, [os.getcwd()])
    if spec is None:
        return None
    return _exec_module(top, spec, f"{os.path.join(os.getcwd(), top)}")


def import_reward(name: str) -> Callable[..., Any]:
    """The function ``func`` of ``pkg.module.func``: from the import path, else from the current folder.

    Raises:
        ValueError: the module or the function cannot be found, or the module fails while importing.
    """
    module_name, func_name = name.rsplit(".", 1)
    top = module_name.split(".")[0]
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != top or _import_from_cwd(top) is None:
                raise
            module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"cannot import reward function {name!r}: {exc} (looked on the import path and in {os.getcwd()}; "
            "--reward_module path/to/file.py loads a file from elsewhere)"
        ) from exc
    if not callable(func):
        raise ValueError(f"reward function {name!r} is not callable")
    return func
