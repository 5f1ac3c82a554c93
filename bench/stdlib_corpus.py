"""A corpus no one here wrote: this Python's standard-library docstrings, one file per module."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
import warnings

# Modules that print, open windows or start things when imported, and test suites.
SKIP = ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3")


def _docstrings(module: object) -> list[str]:
    """The module's docstring and those of its public classes, functions and methods."""
    out = [inspect.getdoc(module) or ""]
    for name, member in sorted(vars(module).items()):
        if name.startswith("_") or getattr(member, "__module__", None) != module.__name__:  # type: ignore[attr-defined]
            continue
        if inspect.isclass(member) or inspect.isfunction(member):
            out.append(f"{name}: {inspect.getdoc(member) or ''}")
        if inspect.isclass(member):
            for attr, value in sorted(vars(member).items()):
                if not attr.startswith("_") and inspect.isfunction(value) and value.__doc__:
                    out.append(f"{name}.{attr}: {inspect.getdoc(value)}")
    return [d for d in out if len(d.split()) > 3]


def _module_names() -> list[str]:
    """Every top-level standard-library module and the modules one level inside its packages."""
    names = []
    for top in sorted(sys.stdlib_module_names - set(SKIP)):
        if top.startswith("_"):
            continue
        names.append(top)
        spec = importlib.util.find_spec(top) if _importable(top) else None
        if spec and spec.submodule_search_locations:
            subs = pkgutil.iter_modules(spec.submodule_search_locations, top + ".")
            names += sorted(m.name for m in subs if "test" not in m.name and "._" not in m.name)
    return names


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def corpus(max_words: int) -> dict[str, bytes]:
    """`module.txt` files of docstrings, in module-name order, until about `max_words` words."""
    files: dict[str, bytes] = {}
    words = 0
    for name in _module_names():
        if name.split(".")[0] in SKIP or words >= max_words:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:  # platform modules (msvcrt, winreg...) and optional extensions
            continue
        text = "\n\n".join(_docstrings(module))
        if text:
            files[f"{name}.txt"] = text.encode()
            words += len(text.split())
    return files
