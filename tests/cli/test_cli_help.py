"""--version, --help examples, packaged examples, and `vecbench describe`.

Every example in a ``--help`` epilog (and every vecbench command line in the README) must be
a command a user can paste: each is split as a POSIX shell would and parsed by the real parser.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from vecbench import __version__
from vecbench.cli.commands import build_parser, main
from vecbench.cli.examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from subcommands(sub, f"{prefix}{name} ")


SUBCOMMANDS = sorted(name for name, _ in subcommands(build_parser()))


def example_lines(text: str) -> list[str]:
    """The command lines of an epilog (continuation backslashes joined, comments dropped)."""
    text = text.replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in text.splitlines()
            if line.strip().startswith("vecbench ")]


def parses(line: str) -> argparse.Namespace | None:
    """The parsed arguments of a command line (None for --version / --help, which exit 0)."""
    words = shlex.split(line)
    assert words[0] == "vecbench"
    try:
        return build_parser().parse_args(words[1:])
    except SystemExit as exc:
        assert exc.code == 0, line
        return None


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"vecbench {__version__}"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_shows_an_example_that_parses(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([*name.split(), "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"^examples?:$", out, re.M), f"`vecbench {name} --help` has no example"
    lines = example_lines(EXAMPLES[name])
    assert lines
    for line in lines:
        if "COMMAND" in line:
            continue
        args = parses(line)
        assert args.command == name.split()[0], line


def test_top_level_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "vecbench run --example quickstart" in out and "--version" in out


def test_readme_command_lines_parse_as_a_shell_splits_them():
    """Every vecbench command line in the README's code blocks pastes into a shell and parses
    (the `--budget bytes_per_vector<=256` line once broke: a shell reads `<` as redirection)."""
    lines = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("    "):
            continue
        command = line.strip().split("  #")[0].strip()
        command = re.sub(r"^(VECBENCH_\w+=\S+ )+", "", command)
        command = command.removeprefix(".venv/bin/")
        if command.startswith("vecbench "):
            lines.append(command)
    assert len(lines) >= 5
    for line in lines:
        assert not re.search(r"[<>|;&]", _unquoted(line)), \
            f"README line a shell would misread (quote it): {line}"
        parses(line)
    # inline commands in the prose too: no unquoted comparison a paste would turn into a redirect
    for span in re.findall(r"`(vecbench [^`]+)`", (ROOT / "README.md").read_text()):
        assert not re.search(r"\w[<>]=?\d", _unquoted(span)), f"unquoted budget in: {span}"


def _unquoted(line: str) -> str:
    """The line with its quoted parts removed (what a shell would interpret)."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", line)


def test_run_example_and_validate_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # from any folder: the example ships with the package
    assert main(["validate", "--example", "quickstart"]) == 0
    out = capsys.readouterr().out
    assert "quickstart.yaml: ok: " in out and "build units" in out
    assert main(["validate", "--example", "quickstar"]) == 2
    assert "did you mean 'quickstart'" in capsys.readouterr().err
    assert main(["validate", "x.yaml", "--example", "quickstart"]) == 2
    assert "expected one" in capsys.readouterr().err


def test_describe_prints_declared_parameters(capsys):
    assert main(["describe", "hnswlib"]) == 0
    out = capsys.readouterr().out
    assert "build parameters:" in out and "search parameters:" in out
    assert "M  " in out and "an integer in [2, 10000]; default 16" in out
    assert main(["describe", "pca"]) == 0
    out = capsys.readouterr().out
    assert "n_components" in out and "an integer >= 1 or a fraction in (0, 1]" in out
    assert main(["describe", "hnswlb"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'hnswlib'" in err and len(err.strip().splitlines()) == 1
