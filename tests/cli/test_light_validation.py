"""`vecbench validate` checks transforms without importing them, and the light checks agree with
the classes (vecbench/transforms/checks.py) on every parameter, good values and bad."""

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from vecbench.core.errors import ConfigError
from vecbench.core.components import check_transform as _check_transform, construct as _construct
from vecbench.core.registry import datasets, transforms

ROOT = Path(__file__).resolve().parents[2]
VALUES = [None, True, False, -1, 0, 1, 2, 7, 10_000, 0.0, 0.05, 0.5, 1.0, 1.5, 100.0, 1e9, "x",
          "auto", "pca", "random", "lower", "upper", "lbfgs", "adam", "e4m3", "e5m2", "global",
          "per_vector", "sparse", "cosine", "rbf", "relu", "manhattan", [], [64, 32], [0], (8,),
          float("nan")]


def last_line_printed(code: str) -> str:
    """The last line ``code`` prints, run in a fresh interpreter (what it imports is its own)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def outcome(function, params):
    try:
        function(params)
    except ConfigError as exc:
        return "ConfigError", str(exc)
    return "ok", ""


@pytest.mark.parametrize("name", transforms.names())
def test_spec_agrees_with_the_class(name):
    cls, spec = transforms.get(name), transforms.spec(name)
    assert spec is not None, f"{name}: registered without a light spec"
    signature = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
    assert spec.defaults == signature
    assert tuple(spec.list_params) == tuple(getattr(cls, "list_params", ()))
    # both as the experiment loader uses them, so the messages and YAML paths are compared too
    by_class = lambda params: _check_transform(cls, params, "pipelines[0][0]")  # noqa: E731
    by_spec = lambda params: _construct(spec, params, "pipelines[0][0]")  # noqa: E731
    cases = [{}, {"no_such_parameter": 1}]
    cases += [{param: value} for param in signature for value in VALUES]
    for params in cases:
        assert outcome(by_spec, params) == outcome(by_class, params), (name, params)


def test_validate_imports_no_heavy_library(tmp_path):
    """An experiment with every built-in transform and faiss/hnswlib indexes: validated with
    none of scikit-learn, scipy, ml_dtypes, numba, faiss, hnswlib or pandas imported."""
    steps = "\n".join(f"  - [{name}: {{}}]" for name in transforms.names())
    yaml = tmp_path / "all.yaml"
    yaml.write_text(f"""name: all
datasets:
  - synthetic: {{n_base: 1000, n_queries: 10, dim: 16}}
pipelines:
  - []
{steps}
  - [pca: {{n_components: [0.25, 0.5]}}, float8: {{format: e4m3, scale: per_vector}}]
indexes:
  - flat: {{}}
  - hnswlib: {{build: {{M: 16}}, search: {{ef: [10, 20]}}}}
  - faiss_ivf: {{build: {{nlist: 16}}, search: {{nprobe: [1, 4]}}}}
orderings: [original]
""")
    code = ("import sys; from vecbench.cli.commands import main\n"
            f"sys.argv = ['vecbench', 'validate', {str(yaml)!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "heavy = ('sklearn', 'scipy', 'ml_dtypes', 'numba', 'faiss', 'hnswlib', 'pandas')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    assert last_line_printed(code) == "[]"


def test_validate_still_rejects_bad_transform_parameters(tmp_path):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text("name: bad\ndatasets: [digits]\npipelines:\n  - [float8: {format: e3m4}]\n"
                    "indexes: [flat]\n")
    done = subprocess.run([sys.executable, "-m", "vecbench", "validate", str(yaml)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "pipelines[0][0].float8.format: expected one of e4m3, e5m2, got 'e3m4'" in done.stderr


DATASET_VALUES = VALUES + ["a.npy", "sift-128-euclidean", "no-such-recipe", "l2", "cos", "ip",
                           ["title"], ["a.parquet", "b.parquet"], 64, 384, 100_000, 1 << 31]


@pytest.mark.parametrize("name", datasets.names())
def test_dataset_spec_agrees_with_the_loader(name):
    """vecbench/datasets/checks.py is what validate reads; the loader classes check the same
    parameters (and cross-parameter rules) when constructed, with the same messages."""
    cls, spec = datasets.get(name), datasets.spec(name)
    assert spec is not None, f"{name}: registered without a light spec"
    signature = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
    # a required metric has the default None in some signatures: then None is refused
    assert sorted(p.name for p in spec.params) == sorted(signature)
    assert {p.name: p.default for p in spec.params if not p.required} == {
        p.name: signature[p.name] for p in spec.params if not p.required}
    assert tuple(spec.list_params) == tuple(getattr(cls, "list_params", ()))
    by_class = lambda params: _construct(cls, params, "datasets[0]")  # noqa: E731
    by_spec = lambda params: _construct(spec, params, "datasets[0]")  # noqa: E731
    required = {p.name: "x" for p in spec.params if p.required}
    if "metric" in required:
        required["metric"] = "l2"
    if name == "recipe":
        required["name"] = "sift-128-euclidean"
    cases = [{}, {"no_such_parameter": 1}, required]
    cases += [{**required, param: value} for param in signature for value in DATASET_VALUES]
    cases += [{"n_base": 10, "n_clusters": 11}, {"dim": 8, "intrinsic_dim": 9},
              {"n_base": 1 << 30, "dim": 4}, {"path": None, "base": None, "metric": "l2"}]
    for params in cases:
        params = {k: v for k, v in params.items() if k in signature or k == "no_such_parameter"}
        if set(required) - set(params):  # the class's TypeError says less; both refuse it
            assert outcome(by_spec, params)[0] == outcome(by_class, params)[0] == "ConfigError"
            continue
        assert outcome(by_spec, params) == outcome(by_class, params), (name, params)


def test_validate_does_not_import_the_loaders(tmp_path):
    """Dataset entries are checked by the specs: no loader module is imported."""
    yaml = tmp_path / "data.yaml"
    yaml.write_text("name: data\ndatasets:\n  - synthetic: {n_base: 1000, dim: [16, 32]}\n"
                    "  - beir: {path: scifact, embeddings: minilm-l6}\n"
                    "  - recipe: {name: sift-128-euclidean}\nindexes: [flat]\n")
    code = ("import sys; from vecbench.run.experiment import load_experiment\n"
            f"load_experiment({str(yaml)!r})\n"
            "print(sorted(m for m in sys.modules if m.startswith('vecbench.datasets.') and "
            "m.rsplit('.', 1)[1] in ('builtin', 'loaders', 'beir', 'embed', 'lsa', 'formats')))")
    assert last_line_printed(code) == "[]"


def test_validate_with_indexes_and_orderings_imports_no_numpy(tmp_path):
    """The index classes' declarations and checks (and the orderings') are read without numpy:
    it comes in with the first vectors, never with ``vecbench validate`` (DESIGN). A factory
    string is parsed by faiss in a child process (vecbench.indexes.faiss.probe)."""
    yaml = tmp_path / "indexes.yaml"
    yaml.write_text("""name: indexes
datasets:
  - synthetic: {n_base: 1000, n_queries: 10, dim: 16}
pipelines:
  - []
  - [pca: {n_components: 0.5}, int8: {}]
indexes:
  - flat: {}
  - hnswlib: {build: {M: [8, 16]}, search: {ef: [10, 20]}}
  - faiss_ivf: {build: {nlist: 16}, search: {nprobe: [1, 4]}}
  - faiss_hnsw: {build: {M: 16}, search: {ef: [16]}}
  - faiss_factory: {build: {factory: "IVF16,PQ4"}, search: {nprobe: [1, 4]}}
  - usearch: {build: {M: 16}, search: {ef: [16]}}
  - pgvector: {build: {method: ivfflat, lists: 16}, search: {probes: [1, 4]}}
orderings: [original, random, lid_desc]
""")
    code = ("import sys; from vecbench.cli.commands import main\n"
            f"sys.argv = ['vecbench', 'validate', {str(yaml)!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('numpy' in sys.modules)")
    assert last_line_printed(code) == "False"


def test_import_vecbench_imports_no_numpy():
    code = "import sys, vecbench, vecbench.indexes, vecbench.cli.commands; print('numpy' in sys.modules)"
    assert last_line_printed(code) == "False"
