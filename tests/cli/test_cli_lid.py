"""`vecbench lid SPEC`: global estimates, pointwise distribution, histogram PNG, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vecbench.compute import lid
from vecbench.core.registry import datasets
from helpers import run_cli as run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    from PIL import Image  # matplotlib's own dependency

    with open(path, "rb") as handle:
        if handle.read(8) != PNG_SIGNATURE:
            return False
    with Image.open(path) as image:
        image.verify()
        return image.format == "PNG" and image.size[0] > 100


def test_json_on_digits_matches_the_library(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "lid", "digits", "--json")
    assert code == 0, err
    report = json.loads(out)
    for key in ("twonn", "mle"):
        assert isinstance(report[key], float) and 2 < report[key] < 64
    for key in ("pca90", "pca95"):
        assert isinstance(report[key], int)
    assert 1 <= report["pca90"] <= report["pca95"] <= 64
    pointwise = report["pointwise"]
    assert pointwise["k"] == 20 and pointwise["estimator"] == "mle"
    for key in ("mean", "median", "p10", "p90"):
        assert isinstance(pointwise[key], float)
    assert pointwise["p10"] < pointwise["median"] < pointwise["p90"]
    assert pointwise["p10"] < pointwise["mean"] < pointwise["p90"]
    # the same numbers as the library computes on the dataset's base vectors
    base = datasets.get("digits")().load().base
    values = lid.pointwise_lid(base, 20)
    assert pointwise["median"] == pytest.approx(np.median(values))
    assert report["mle"] == pytest.approx(lid.global_estimates(base, 20)["mle"])
    # default histogram name, in the working directory
    assert report["histogram"] == "lid-digits.png"
    assert is_png(tmp_path / "lid-digits.png")


def test_text_output_of_an_npy_spec_with_k_and_output(capsys, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    # 3-dimensional data in 12 dimensions: LID near 3, far below the ambient dimension
    base = rng.standard_normal((600, 3)) @ rng.standard_normal((3, 12))
    np.save(tmp_path / "b.npy", base.astype(np.float32))
    np.save(tmp_path / "q.npy", base[:10].astype(np.float32))
    monkeypatch.chdir(tmp_path)
    spec = "npy: {base: b.npy, queries: q.npy, metric: cos}"
    code, out, err = run(capsys, "lid", spec, "--k", "10", "-o", "plots/hist.png")
    assert code == 0, err
    assert "metric cos" in out and "pointwise mle (k=10, exact graph)" in out
    assert "histogram -> plots/hist.png" in out and is_png(tmp_path / "plots" / "hist.png")
    code, out, _ = run(capsys, "lid", spec, "--k", "10", "--json", "-o", "h.png")
    report = json.loads(out)
    # normalized 3-d data lies on a 2-d sphere: ID about 2, nowhere near 12
    assert 1 < report["pointwise"]["median"] < 4 and report["pca95"] <= 3
    assert report["pointwise"]["p10"] <= report["pointwise"]["mean"] <= report["pointwise"]["p90"]


def test_several_specs_share_one_histogram(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = "synthetic: {n_base: 800, n_queries: 10, dim: 16, intrinsic_dim: 3}"
    code, out, err = run(capsys, "lid", "digits", spec, "--json")
    assert code == 0, err
    reports = json.loads(out)
    assert [r["dataset"] for r in reports] == ["digits", "synthetic-d16-id3"]
    assert reports[1]["pointwise"]["median"] < reports[0]["pointwise"]["median"]
    assert reports[0]["histogram"] == "lid-digits+synthetic-d16-id3.png"
    assert is_png(tmp_path / "lid-digits+synthetic-d16-id3.png")


@pytest.mark.parametrize("argv, message", [
    (["digitz"], "SPEC: unknown dataset or recipe 'digitz' (did you mean 'digits'?)"),
    (["npy: {base: missing.npy, queries: missing.npy}"], "missing.npy"),
    (["digits: {"], "SPEC: "),
    (["digits", "--k", "1"], "--k: expected an integer >= 2, got '1'"),
    (["digits", "--k", "x"],
     "vecbench lid: argument --k: expected an integer >= 2, written in ASCII digits, got 'x'"),
    (["digits", "--k", "5000"], "a 5000-NN graph needs at least 5001"),
    (["digits", "--estimator", "pca"], "--estimator: expected one of mle, tle, mada, mom"),
    (["digits", "-o", "hist.jpg"],
     "-o: expected a file name ending in .png, .svg, .pdf, got 'hist.jpg'"),
    (["synthetic: {dim: [8, 16]}"],
     "SPEC: 'synthetic: {dim: [8, 16]}' expands to 2 datasets; expected one"),
    (["digits", "digitz"], "SPEC: unknown dataset or recipe 'digitz'"),
])
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "lid", *argv)
    assert code == 2 and out == ""
    assert err.startswith("vecbench: error: ") and message in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*.png"))
