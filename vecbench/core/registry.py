"""Named components, looked up by the names experiments use.

Targets may be given as ``"module:attr"`` strings so that registering a component imports
nothing: ``import vecbench`` must stay light, and faiss or umap are imported only when a
component that needs them is used. A component may also be registered with a ``spec``: a light
object (also lazy, ``"module:attr"``) with ``validate(params)`` and ``list_params`` that checks
parameters without importing the component, so ``vecbench validate`` needs no heavy library.

Third-party packages add components through the entry-point group of a registry
(``vecbench.indexes``, ``vecbench.transforms``, ``vecbench.datasets``, ``vecbench.orderings``,
``vecbench.metrics``): ``NAME = "module:attr"``. A group is read on the first lookup or listing,
after the built-ins, and its targets stay lazy like theirs: a plugin that fails to import is an
error (one line naming its distribution) only when that component is used. A plugin may not
take a name already taken: using such a name is an error naming both distributions.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path
from typing import Any, Callable

from vecbench.core.errors import ConfigError, did_you_mean

#: Who registered a built-in, in messages about a clash.
BUILTIN = "vecbench (built-in)"


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _distribution(entry_point: Any) -> str:
    """``name version`` of the distribution that declared an entry point."""
    dist = getattr(entry_point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def register_declared(registry: "Registry", package: str, folder: str | os.PathLike) -> None:
    """Register what the modules of a package declare, without importing them: each module
    may hold a module-level ``REGISTER = {"name": "ClassName", ...}`` (a literal), read here
    from its source with ``ast``. Adding a component is then its module (and its test), with no
    central table; and listing or validating still imports no engine library."""
    for path in sorted(Path(folder).rglob("*.py")):
        relative = path.relative_to(folder).with_suffix("")
        module = ".".join((package, *relative.parts)).removesuffix(".__init__")
        for name, attr in _declared(path).items():
            registry.register(name, f"{module}:{attr}")


def _declared(path: Path) -> dict:
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "REGISTER"):
            return dict(ast.literal_eval(node.value))
    return {}


class Registry:
    """A mapping of names to components, with lazy targets and did-you-mean errors.

    ``builtins`` names a module whose import registers the built-in components; it is imported on
    first use, so the registry can live in a light module while the table lives beside the code.
    """

    def __init__(self, kind: str, builtins: str | None = None, group: str | None = None):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._plugins_loaded = group is None
        self._entries: dict[str, Any] = {}
        self._specs: dict[str, Any] = {}
        self._origins: dict[str, str] = {}   # plugin name -> its distribution
        self._clashes: dict[str, str] = {}   # name -> why it cannot be used

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
        if not self._plugins_loaded:
            self._plugins_loaded = True  # first, so a lookup from inside a plugin cannot loop
            self._load_plugins()

    def _load_plugins(self) -> None:
        """Record the group's entry points (names and "module:attr" values; nothing imported)."""
        from importlib.metadata import entry_points

        seen = set()
        for entry_point in entry_points(group=self.group):
            origin = _distribution(entry_point)
            if (entry_point.name, entry_point.value, origin) in seen:
                continue  # one distribution found twice on sys.path
            seen.add((entry_point.name, entry_point.value, origin))
            self._add_plugin(entry_point.name, entry_point.value, origin)

    def _add_plugin(self, name: str, value: str, origin: str) -> None:
        if name in self._entries:
            owner = self._origins.get(name, BUILTIN)
            self._clashes[name] = (
                f"{self.kind} {name!r} is registered twice: by {owner} and by {origin} "
                f"(entry point group {self.group}); refused: one of them must rename it")
            return
        self._entries[name] = value
        self._origins[name] = origin

    def origin(self, name: str) -> str:
        """The distribution that registered ``name``: a plugin's, or :data:`BUILTIN`."""
        self._load_builtins()
        return self._origins.get(name, BUILTIN)

    def _known(self, name: Any) -> None:
        self._load_builtins()
        if isinstance(name, str) and name in self._clashes:
            raise ConfigError(self._clashes[name])
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(self.unknown_message(name))

    def get(self, name: str) -> Any:
        self._known(name)
        target = self._entries[name]
        if isinstance(target, str):
            target = self._entries[name] = self._import(name, target)
        return target

    def _import(self, name: str, target: str) -> Any:
        if name not in self._origins:
            return _resolve(target)  # a built-in's import error is vecbench's bug: traceback
        try:
            return _resolve(target)
        except Exception as exc:  # noqa: BLE001 (whatever a plugin's import raises)
            raise ConfigError(f"{self.kind} {name!r} of {self._origins[name]} failed to load "
                              f"({target}): {_first_line(exc)}") from None

    def spec(self, name: str) -> Any:
        """The light parameter spec of ``name``, or None where none was registered."""
        self._known(name)
        spec = self._specs.get(name)
        if isinstance(spec, str):
            spec = self._specs[name] = _resolve(spec)
        return spec

    def unknown_message(self, name: Any) -> str:
        names = self.names()
        return (f"unknown {self.kind} {name!r}{did_you_mean(name, names)}; expected one of: "
                f"{', '.join(names)}")

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries


datasets = Registry("dataset", "vecbench.datasets", "vecbench.datasets")
transforms = Registry("transform", "vecbench.transforms", "vecbench.transforms")
indexes = Registry("index", "vecbench.indexes", "vecbench.indexes")
orderings = Registry("ordering", "vecbench.compute.ordering", "vecbench.orderings")
#: Metrics computed at collect (``vecbench.evaluate.metrics.Metric`` objects); not a component kind of
#: experiments, so not in REGISTRIES.
metrics = Registry("metric", "vecbench.metrics", "vecbench.metrics")

REGISTRIES: dict[str, Registry] = {
    "datasets": datasets,
    "transforms": transforms,
    "indexes": indexes,
    "orderings": orderings,
}

#: Every registry ``vecbench check`` can find a name in.
KINDS: dict[str, Registry] = {**REGISTRIES, "metrics": metrics}
