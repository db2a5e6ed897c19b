"""Named components, looked up by the names experiments use.

Targets may be given as ``"module:attr"`` strings so that registering a component imports
nothing: ``import vecbench`` must stay light, and faiss or umap are imported only when a
component that needs them is used. A component may also be registered with a ``spec``: a light
object (also lazy, ``"module:attr"``) with ``validate(params)`` and ``list_params`` that checks
parameters without importing the component, so ``vecbench validate`` needs no heavy library.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable

from vecbench.errors import ConfigError


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry:
    """A mapping of names to components, with lazy targets and did-you-mean errors.

    ``builtins`` names a module whose import registers the built-in components; it is imported on
    first use, so the registry can live in a light module while the table lives beside the code.
    """

    def __init__(self, kind: str, builtins: str | None = None):
        self.kind = kind
        self._builtins = builtins
        self._entries: dict[str, Any] = {}
        self._specs: dict[str, Any] = {}

    def register(self, name: str, target: Any = None, *, spec: Any = None) -> Any:
        """Register ``target`` under ``name``; without a target, return a decorator.

        ``spec`` (an object or a ``"module:attr"`` string) checks parameters without the target.
        """
        if spec is not None:
            self._specs[name] = spec
        if target is None:
            def decorator(obj: Any) -> Any:
                self._entries[name] = obj
                return obj
            return decorator
        self._entries[name] = target
        return target

    def _load_builtins(self) -> None:
        if self._builtins is not None:
            module, self._builtins = self._builtins, None
            importlib.import_module(module)

    def get(self, name: str) -> Any:
        self._load_builtins()
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):
            target = self._entries[name] = _resolve(target)
        return target

    def spec(self, name: str) -> Any:
        """The light parameter spec of ``name``, or None where none was registered."""
        self._load_builtins()
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(self.unknown_message(name))
        spec = self._specs.get(name)
        if isinstance(spec, str):
            spec = self._specs[name] = _resolve(spec)
        return spec

    def unknown_message(self, name: Any) -> str:
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; expected one of: {', '.join(names)}"

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries


datasets = Registry("dataset", "vecbench.datasets")
transforms = Registry("transform", "vecbench.transforms")
indexes = Registry("index", "vecbench.indexes")
orderings = Registry("ordering", "vecbench.ordering")

REGISTRIES: dict[str, Registry] = {
    "datasets": datasets,
    "transforms": transforms,
    "indexes": indexes,
    "orderings": orderings,
}
