"""Property-based bad input: generated YAML numbers, metric names, cascade labels and row filters
each end in one line on stderr naming where, exit 2, no traceback, and nothing written.

The CLI runs in this process (``cli.main``), so an example costs milliseconds; every target is
bounded by ``max_examples`` and derandomized, so the suite's time and its examples are fixed.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbench.cli import commands as cli
from vecbench.core.errors import ConfigError
from vecbench.evaluate.metrics import parse_metric
from vecbench.core.params import MAX_INT
from cli_checks import TINY, snapshot

SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

def refused(argv, *named, folder: Path | None = None) -> str:
    """Run the CLI here; assert exit 2, one stderr line naming ``named``, no traceback, and
    ``folder`` unchanged."""
    before = snapshot(folder, folders=True) if folder is not None else None
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main([str(a) for a in argv])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert code == 2, err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert len(lines) == 1, err.getvalue()
    for name in named:
        assert name in lines[0], (name, lines[0])
    if folder is not None:
        assert snapshot(folder, folders=True) == before, "something was written"
    return lines[0]


@pytest.fixture(scope="module")
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="vecbench-properties-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def results(workdir):
    """A complete results folder (one unit), made once for the module."""
    exp = workdir / "exp.yaml"
    exp.write_text(TINY)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["run", str(exp), "--results", str(workdir / "results"), "--quiet"]) == 0
    return workdir / "results"


def validate_refuses(workdir: Path, text: str, *named) -> str:
    folder = workdir / "yaml"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / "exp.yaml"
    path.write_text(text)
    return refused(["validate", path], "exp.yaml", *named, folder=folder)


# --- YAML numbers -----------------------------------------------------------------------------

def yaml_number(value) -> str:
    """A YAML 1.1 scalar for ``value`` (PyYAML reads 1e5 as a string; 1.0e+5 is a float)."""
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return f"{value:.6e}"
    return str(value)


#: (YAML with {} where the number goes, its path, the largest valid value or None)
NUMERIC_PARAMS = [
    ("timing: {{min_seconds: {}}}", "timing.min_seconds", 3600.0),
    ("timing: {{latency_seconds: {}}}", "timing.latency_seconds", 3600.0),
    ("timing: {{client_seconds: {}}}", "timing.client_seconds", 3600.0),
    ("timing: {{min_passes: {}}}", "timing.min_passes", 10_000),
    ("k: {}", "k", None),
    ("seed: {}", "seed", None),
    ("datasets:\n  - synthetic: {{n_base: 300, noise: {}}}", "noise", 1000.0),
    ("datasets:\n  - synthetic: {{n_base: 300, cluster_std: {}}}", "cluster_std", 1000.0),
    ("indexes:\n  - hnswlib: {{search: {{ef: {}}}}}", "ef", None),
    ("indexes:\n  - faiss_rabitq: {{build: {{refine: true}}, search: {{k_factor: {}}}}}",
     "k_factor", 1000.0),
    ("indexes:\n  - faiss_pq: {{build: {{m: 4}}, rescore: {{oversample: {}}}}}",
     "oversample", 1000),
    ("pipelines:\n  - [mpad: {{temperature: {}}}]", "temperature", 100.0),
    ("pipelines:\n  - [umap: {{min_dist: {}}}]", "min_dist", 1.0),
]


def bad_numbers(high):
    """Values no parameter takes: non-finite, beyond the declared bound or the 2**31-1 cap."""
    over = (high if high is not None else MAX_INT)
    return st.one_of(
        st.sampled_from([math.inf, -math.inf, math.nan]),
        st.floats(min_value=float(over) * 1.001 + 1, max_value=1e300),
        st.integers(min_value=int(over) + 1, max_value=10**60),
        st.integers(min_value=-10**60, max_value=-MAX_INT - 1),
    )


def with_section(text: str) -> str:
    """TINY with the top-level section ``text`` sets replaced by it."""
    key = text.split(":")[0]
    kept, skipping = [], False
    for line in TINY.strip().splitlines():
        if line and line[0] != " ":
            skipping = line.split(":")[0] == key
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n" + text + "\n"


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), case=st.sampled_from(NUMERIC_PARAMS))
def test_yaml_numbers_out_of_bounds(workdir, data, case):
    template, path, high = case
    value = data.draw(bad_numbers(high), label="value")
    validate_refuses(workdir, with_section(template.format(yaml_number(value))),
                     path.split(".")[-1])


# --- metric names -----------------------------------------------------------------------------

METRIC_STEMS = ["recall", "recall_eps", "ndcg", "mrr", "qps", "p99_ms", "judged_recall"]
#: Text a metric name must not carry: non-ASCII digits, separators, signs, spaces.
ODD = st.text(alphabet=st.sampled_from(list("0123456789@_q-+ .x") +
                                        ["\u00b2", "\u0663", "\u0661", "\uff11", "\u2074"]),
              max_size=8)


def metric_names():
    return st.builds(lambda stem, tail: stem + tail, st.sampled_from(METRIC_STEMS), ODD)


def is_invalid(name: str) -> bool:
    try:
        parse_metric(name)
    except ConfigError:
        return True
    return False


@settings(max_examples=120, **SETTINGS)
@given(name=metric_names().filter(is_invalid))
def test_collect_metric_names(results, name):
    refused(["collect", results, "--metrics", name], "--metrics", folder=results)


@settings(max_examples=60, **SETTINGS)
@given(name=metric_names().filter(is_invalid))
def test_compare_rule_metric_names(results, name):
    refused(["compare", results, results, "--fail", f"{name}:-1%"], "--fail", folder=results)


@settings(max_examples=60, **SETTINGS)
@given(name=metric_names())
def test_accepted_metric_names_are_ascii_with_the_right_depth(name):
    try:
        column = parse_metric(name)
    except ConfigError:
        return
    assert name.isascii()
    assert (column.depth is not None) == column.metric.takes_depth


# --- cascade labels ---------------------------------------------------------------------------

@settings(max_examples=60, **SETTINGS)
@given(label=st.builds(lambda a, b: a + b,
                       st.sampled_from(["int8x", "float32x", "int8x10>float32x", "int8", "x"]),
                       ODD.filter(lambda t: not (t.isascii() and t.isdigit()
                                                 and not t.startswith("0")
                                                 and int(t) <= 100))))
def test_cascade_labels(workdir, label):
    text = with_section(f'indexes:\n  - faiss_pq: {{build: {{m: 4}}, rescore: {{cascade: '
                        f'"{label}"}}}}')
    validate_refuses(workdir, text, "cascade")


# --- row filters ------------------------------------------------------------------------------

def deep_filters():
    unary = st.sampled_from(["not ", "-", "~", "+"])
    chain = st.builds(lambda ops, n: "".join(ops * n) + "k == 5", st.lists(unary, min_size=1,
                                                                           max_size=3),
                      st.integers(33, 20_000))
    brackets = st.builds(lambda n, b: b[0] * n + "k == 5" + b[1] * n, st.integers(33, 5000),
                         st.sampled_from(["()", "[]"]))
    long = st.builds(lambda n: " or ".join(["k == 5"] * n), st.integers(700, 20_000))
    return st.one_of(chain, brackets, long)


@settings(max_examples=40, **SETTINGS)
@given(query=deep_filters(), option=st.sampled_from(["--where", "--baseline"]))
def test_row_filters_too_deep_or_long(results, query, option):
    argv = ["paired", results, "--metric", "recall@5"]
    argv += ["--baseline", "index == 'flat'", "--where", query] if option == "--where" else \
        ["--baseline", query]
    line = refused(argv, option, folder=results)
    assert len(line) < 400


@settings(max_examples=60, **SETTINGS)
@given(query=st.lists(st.sampled_from(list("k=<>!()[]~-+ '\"`@.,0123456789") +
                                      ["not ", " and ", " or ", "index", "\u00b2"]),
                      min_size=1, max_size=40).map("".join))
def test_row_filters_any_text_is_one_line_or_rows(results, query):
    """Any filter text: rows (exit 0) or one line, exit 2; never a traceback, never a write."""
    before = snapshot(results, folders=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["paired", str(results), "--metric", "recall@5", "--baseline",
                         "index == 'flat'", "--where", query])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert "Traceback" not in err.getvalue()
    assert code == 0 or (code == 2 and len(lines) == 1), err.getvalue()
    assert snapshot(results, folders=True) == before


def test_module_text_is_valid():  # the YAML helper keeps TINY intact
    assert "flat" in with_section("k: 7") and "k: 7" in with_section("k: 7")
    assert textwrap.dedent(TINY) == TINY
