"""Components named in YAML: ``name`` or ``{name: params}`` entries, their parameter grids, and
their validation without data (a light spec where the registry has one, else the constructor).

The experiment spec (:mod:`vecbench.run.experiment`) expands every entry through these, and a
dataset recipe (:mod:`vecbench.datasets.recipes`) expands its one dataset entry the same way.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_no_extra
from vecbench.core.registry import Registry, datasets


@dataclass(frozen=True)
class Component:
    """A registered component by name, with its (scalar) parameters and its YAML path."""

    name: str
    params: dict = field(default_factory=dict, hash=False)
    where: str = ""

    def canonical(self) -> dict:
        return {self.name: self.params}


#: The most combinations one grid (a component's parameters, or the whole experiment) may have.
MAX_GRID = 100_000


def expand_params(params: Any, where: str, list_params: Iterable[str] = ()) -> list[dict]:
    """All combinations of a parameter mapping whose list values are axes.

    A parameter named in ``list_params`` takes a list as its value: a list of scalars is one
    value, a list of lists is an axis. ``zip:`` maps names to equally long lists that advance
    together. Nested mappings expand recursively.
    """
    if params is None:
        return [{}]
    if not isinstance(params, dict):
        raise ConfigError(f"expected a mapping of parameters, got {params!r}", where)
    list_params = set(list_params)
    axes: list[list[dict]] = []
    for key, value in params.items():
        path = f"{where}.{key}" if where else str(key)
        if key == "zip":
            axes.append(_zip_axis(value, path))
        elif isinstance(value, dict):
            axes.append([{key: v} for v in expand_params(value, path, list_params)])
        elif isinstance(value, list) and (key not in list_params or
                                          (value and isinstance(value[0], list))):
            if not value:
                raise ConfigError("expected a non-empty list of values, got []", path)
            axes.append([{key: v} for v in value])
        else:
            axes.append([{key: value}])
    size = math.prod(len(axis) for axis in axes)
    if size > MAX_GRID:   # checked before the combinations are made
        raise ConfigError(f"the parameter grid has {size} combinations; expected at most "
                          f"{MAX_GRID} (split the study, or use zip: or cases:)", where)
    combos = []
    for parts in itertools.product(*axes):
        merged: dict = {}
        for part in parts:
            merged.update(part)
        combos.append(merged)
    return combos


def _zip_axis(value: Any, where: str) -> list[dict]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"expected a mapping of parameter names to equally long lists, "
                          f"got {value!r}", where)
    lengths = {}
    for name, values in value.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"expected a non-empty list, got {values!r}", f"{where}.{name}")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"expected lists of equal length, got lengths {lengths}", where)
    n = next(iter(lengths.values()))
    return [{name: values[i] for name, values in value.items()} for i in range(n)]


def entry_of(entry: Any, where: str, kind: str) -> tuple[str, Any]:
    """``name`` or ``{name: params}`` -> (name, params)."""
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and len(entry) == 1:
        name, params = next(iter(entry.items()))
        return str(name), {} if params is None else params
    raise ConfigError(f"expected a {kind} name or a one-key mapping {{name: parameters}}, "
                      f"got {entry!r}", where)


def lookup(registry: Registry, name: str, where: str, *, spec: bool = False) -> Any:
    """The component ``name`` names, or with ``spec`` its light parameter spec (None where it
    has none: no heavy imports); an unknown name is a ConfigError at ``where``."""
    try:
        return registry.spec(name) if spec else registry.get(name)
    except ConfigError as exc:
        raise exc.within(where) from None


def construct(target: Any, params: dict, where: str) -> Any:
    """Instantiate a component to validate its parameters (constructors need no data), or
    check them with its light spec."""
    try:
        if hasattr(target, "validate") and hasattr(target, "defaults"):
            return target.validate(dict(params))
        return target(**params)
    except ConfigError as exc:
        raise exc.within(where) from None
    except TypeError as exc:
        import inspect
        accepted = [p for p in inspect.signature(target).parameters if p not in ("self",)]
        try:
            check_no_extra(getattr(target, "__name__", "component"), params, accepted)
        except ConfigError as bad:
            raise bad.within(where) from None
        raise ConfigError(f"invalid parameters ({exc})", where) from None


def check_transform(target: Any, params: dict, where: str) -> None:
    """Transforms check their values at fit (scikit-learn's rule), and without data here."""
    check = getattr(target, "check_params", None)
    if check is None:  # a scikit-learn transformer registered directly
        construct(target, params, where)
        return
    try:
        check(params)
    except ConfigError as exc:
        raise exc.within(where) from None


def list_params_of(target: Any) -> set:
    return set(getattr(target, "list_params", ()))


def expand_component(registry: Registry, entry: Any, where: str, kind: str,
                     check: Callable[[Any, dict, str], Any]) -> list[Component]:
    """Every combination of one ``{name: params}`` entry, each checked by ``check(target,
    params, path)`` against the component's light spec (else the component itself)."""
    name, params = entry_of(entry, where, kind)
    path = f"{where}.{name}"
    spec = lookup(registry, name, where, spec=True)
    target = spec if spec is not None else lookup(registry, name, where)
    combos = expand_params(params, path, list_params_of(target))
    for combo in combos:
        check(target, combo, path)
    return [Component(name, combo, path) for combo in combos]


def expand_dataset(entry: Any, where: str) -> list[Component]:
    return expand_component(datasets, entry, where, "dataset", construct)
