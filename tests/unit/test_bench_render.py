"""benchmarks/render.py: recorded results become RESULTS.md's tables; a bad result stops it."""

import importlib.util
import json
from pathlib import Path

import pytest

RENDER = Path(__file__).resolve().parents[2] / "benchmarks" / "render.py"


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("bench_render", RENDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(folder: Path, test: str, met, load: float, target: str = "≤ 1 s") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"benchmark": folder.name, "test": test, "measured": f"{test} took 0.5 s | fast",
             "target": target, "met": met, "numbers": {"s": 0.5}, "machine": "CPU X, 2 cores",
             "load": load, "versions": {"python": "3.11.7", "numpy": "2.0"},
             "date": "2026-12-02"}
    (folder / f"{test}.json").write_text(json.dumps(entry))


def test_template_and_two_results_render_to_tables(render, tmp_path):
    result(tmp_path / "bench_a", "test_two", False, 3.25)
    result(tmp_path / "bench_a", "test_one", True, 1.0)
    result(tmp_path / "bench_b", "test_context", None, 0.0, target="")
    template = "# R\n\n<!-- machines -->\n\n## A\n\n<!-- bench_a -->\n\n## C\n\n<!-- bench_c -->\n"
    text = render.render(template, render.load(tmp_path))
    assert text == """# R

- **CPU X, 2 cores**; numpy 2.0, python 3.11.7: bench_a, bench_b

## A

| test | measured | target | met | load | date |
|---|---|---|---|---|---|
| `test_one` | test_one took 0.5 s \\| fast | ≤ 1 s | ✓ | 1.0 | 2026-12-02 |
| `test_two` | test_two took 0.5 s \\| fast | ≤ 1 s | ✗ | 3.2 | 2026-12-02 |

## C

*(bench_c: not run yet)*


## bench_b

| test | measured | target | met | load | date |
|---|---|---|---|---|---|
| `test_context` | test_context took 0.5 s \\| fast | (context) |  | 0.0 | 2026-12-02 |
"""


@pytest.mark.parametrize("content", ["{not json", '{"test": "x"}'])
def test_a_corrupt_result_is_a_one_line_exit(render, tmp_path, capsys, content):
    (tmp_path / "bench_a").mkdir()
    bad = tmp_path / "bench_a" / "test_x.json"
    bad.write_text(content)
    with pytest.raises(SystemExit) as exc:
        render.load(tmp_path)
    assert exc.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith(f"{bad}: not a benchmark result")
    assert "rerun its benchmark" in message
