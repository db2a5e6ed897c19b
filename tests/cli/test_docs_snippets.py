"""Docs that run: every YAML, shell and Python snippet in the README and docs/ is executed or
validated, so a snippet that fails as written fails here first.

- YAML: an experiment is expanded and checked by ``build_experiment`` (what ``vecbench
  validate`` does, dimensions of known datasets included); a ``cases:`` fragment is checked
  inside its page's experiment; a regression spec by the pytest plugin's ``build_spec``.
- Shell: a ``vecbench`` line is parsed by the CLI's own parser, and run when it is cheap and
  needs no data (``--version``, ``validate``, ``list``, ``describe``, ``datasets list``); the
  experiment a ``run`` or ``validate`` names must validate. ``make`` targets exist in the
  Makefile, ``pytest`` options in the plugin, other programs in the virtual environment.
- Python: compiled; run where it needs nothing but numpy.

Lines in a code block that start with none of the known programs are output (what a command
prints, a diagram) and are left alone; a block that mixes them with commands is refused.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from vecbench.cli import commands as cli
from vecbench.run.experiment import build_experiment
from vecbench.cli.pytest_plugin import build_spec

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PROGRAMS = ("vecbench", "make", "pytest", "python3", "pip", "dask", "export")
PLACEHOLDERS = {"exp.yaml"}  # "any experiment of yours" in the how-tos
CHEAP = {"--version", "validate", "list", "describe"}  # run: no data, a second or less


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    kind: str        # yaml, python, shell (fenced bash or an indented block)
    text: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def snippets(page: Path) -> list[Snippet]:
    """Fenced blocks by their language; indented blocks (after a blank line) as shell."""
    found, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            kind = {"bash": "shell", "sh": "shell"}.get(fence.group(1), fence.group(1))
            found.append(Snippet(page, i + 1, kind, "\n".join(lines[i + 1:end])))
            i = end + 1
            continue
        if lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            found.append(Snippet(page, i + 1, "shell",
                                 "\n".join(line[4:] for line in lines[i:end])))
            i = end
            continue
        i += 1
    return found


ALL = [s for page in PAGES for s in snippets(page)]


def of_kind(kind: str) -> list:
    return [pytest.param(s, id=s.id) for s in ALL if s.kind == kind]


def page_experiments(page: Path) -> dict[str, dict]:
    """The page's experiment YAML blocks by file name (``name`` + .yaml)."""
    out = {}
    for snippet in snippets(page):
        if snippet.kind == "yaml":
            raw = yaml.safe_load(snippet.text)
            if isinstance(raw, dict) and "datasets" in raw:
                out[f"{raw.get('name', 'experiment')}.yaml"] = raw
    return out


def validate_experiment(raw: dict, tmp_path: Path) -> None:
    experiment = build_experiment(raw, name_default="snippet", base_dir=str(tmp_path))
    assert experiment.units


@pytest.fixture
def example_plugin(monkeypatch):
    """The plugins how-to's example package, registered as its entry point would register it
    (tests/e2e/test_entry_point_plugins.py installs it for real, in a subprocess)."""
    from vecbench.core.registry import indexes

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugin_example"))
    indexes.names()  # built-ins and installed plugins first, as on a first lookup
    monkeypatch.setitem(indexes._entries, "numpy_brute", "vecbench_example:NumpyBrute")


@pytest.mark.parametrize("snippet", of_kind("yaml"))
def test_yaml_snippet_validates(snippet: Snippet, tmp_path, request):
    if snippet.page.name == "plugins.md":
        request.getfixturevalue("example_plugin")
    raw = yaml.safe_load(snippet.text)
    assert isinstance(raw, dict), f"{snippet.id}: not a YAML mapping"
    if "index" in raw and "dataset" in raw:  # a regression spec of the pytest plugin
        build_spec(raw, file=snippet.id, base_dir=str(tmp_path))
    elif "cases" in raw and "datasets" not in raw:  # a fragment of the page's experiment
        base = next(iter(page_experiments(snippet.page).values()))
        kept = {key: value for key, value in base.items()
                if key not in ("pipelines", "indexes", "orderings")}
        validate_experiment({**kept, **raw}, tmp_path)
    else:
        validate_experiment(raw, tmp_path)


def commands(snippet: Snippet) -> list[list[str]]:
    """The command lines of a shell block (comments and output left out)."""
    found, output = [], []
    for line in snippet.text.splitlines():
        # shlex keeps \` in double quotes where a POSIX shell reads a backtick
        words = shlex.split(line.replace("\\`", "`"), comments=True)
        if not words:
            continue
        program = words[0].rsplit("/", 1)[-1]
        if program in PROGRAMS:
            found.append([program, *words[1:]])
        else:
            output.append(line)
    assert not (found and output), f"{snippet.id}: commands mixed with other lines: {output}"
    return found


SHELL = [pytest.param(s, id=s.id) for s in ALL if s.kind == "shell" and commands(s)]


def test_snippets_were_found():
    assert len(of_kind("yaml")) >= 7 and len(SHELL) >= 12 and of_kind("python")


@pytest.mark.parametrize("snippet", SHELL)
def test_shell_snippet_runs_or_parses(snippet: Snippet, tmp_path, capsys, monkeypatch):
    experiments = page_experiments(snippet.page)
    for command in commands(snippet):
        program, args = command[0], command[1:]
        if program == "vecbench":
            check_vecbench(args, experiments, tmp_path, capsys, monkeypatch)
        elif program == "make":
            makefile = (ROOT / "Makefile").read_text()
            for target in args:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), \
                    f"{snippet.id}: make {target}: no such target"
        elif program == "pytest":
            plugin = (ROOT / "vecbench" / "cli" / "pytest_plugin.py").read_text()
            for option in args:
                assert f'"{option.split("=")[0]}"' in plugin, f"{snippet.id}: {option}"
        elif program in ("pip", "dask"):
            assert shutil.which(program, path=str(Path(sys.executable).parent)), program
        elif program == "python3":
            assert args[:2] == ["-m", "venv"], f"{snippet.id}: {command}"


def check_vecbench(args: list[str], experiments: dict, tmp_path: Path, capsys,
                   monkeypatch) -> None:
    parser = cli.build_parser()
    try:
        parser.parse_args(args)
    except SystemExit as exc:
        if exc.code == 0 and args[-1] in ("--version", "--help"):
            return
        pytest.fail(f"vecbench {shlex.join(args)}: refused by the parser "
                    f"({capsys.readouterr().err.strip()})", pytrace=exc.code is None)
    capsys.readouterr()
    if args and args[0] in ("run", "validate") and not args[1].startswith("-"):
        file = args[1]
        if file in PLACEHOLDERS:
            return
        if not (ROOT / file).exists():  # a file written on the same page
            assert file in experiments, f"vecbench {args[0]} {file}: no such file on the page"
            (tmp_path / file).write_text(yaml.safe_dump(experiments[file]))
    if args and (args[0] in CHEAP or args[:2] == ["datasets", "list"]):
        monkeypatch.chdir(tmp_path if not (ROOT / args[-1]).exists() else ROOT)
        code = cli.main(args)
        out = capsys.readouterr()
        assert code == 0, f"vecbench {shlex.join(args)} exited {code}: {out.err}"


@pytest.mark.parametrize("snippet", of_kind("python"))
def test_python_snippet_compiles_and_runs_where_it_can(snippet: Snippet, tmp_path,
                                                       monkeypatch):
    code = compile(snippet.text, snippet.id, "exec")
    if "dask_jobqueue" in snippet.text:
        return  # starts Slurm jobs: compiled only
    import numpy as np

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    exec(code, {"corpus_embeddings": rng.standard_normal((50, 8)),  # noqa: S102
                "query_embeddings": rng.standard_normal((5, 8))})


@pytest.mark.slow
@pytest.mark.realdata
def test_compression_budget_howto_runs_as_written(tmp_path, monkeypatch, capsys):
    """Every command of the budget how-to, in order, on its own YAML (SciFact)."""
    from vecbench.datasets.paths import PathResolver

    try:
        PathResolver(tmp_path).resolve("path", "scifact")
    except Exception:  # noqa: BLE001
        pytest.skip("SciFact is not in $VECBENCH_DATA")
    page = ROOT / "docs" / "how-to" / "compression-budget.md"
    for name, raw in page_experiments(page).items():
        (tmp_path / name).write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    ran = 0
    for snippet in snippets(page):
        for command in (commands(snippet) if snippet.kind == "shell" else []):
            code = cli.main([*command[1:], *(["--quiet"] if command[1] == "run" else [])])
            out = capsys.readouterr()
            assert code == 0, f"{shlex.join(command)} exited {code}: {out.err[-1000:]}"
            ran += 1
    assert ran == 5 and (tmp_path / "tradeoff.png").stat().st_size > 10_000
