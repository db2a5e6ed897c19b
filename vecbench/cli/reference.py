"""Component reference, written from the parameter declarations (``vecbench.core.params``).

``vecbench describe NAME`` prints one component as text; the documentation site's reference
pages are the Markdown of every registered component, generated at build time by the MkDocs
hook ``docs/hooks/reference.py``. Both read the same declarations the constructors validate
with, so neither can drift from what the code accepts.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from vecbench.core.errors import ConfigError, did_you_mean
from vecbench.core.params import Param, declared
from vecbench.core.registry import REGISTRIES

#: Registry kind -> (heading, where the component goes in an experiment YAML).
KINDS = {
    "datasets": ("Dataset loaders", "datasets: [{NAME: {PARAM: VALUE}}]"),
    "transforms": ("Transforms (pipeline steps)", "pipelines: [[{NAME: {PARAM: VALUE}}]]"),
    "indexes": ("Indexes", "indexes: [{NAME: {build: {PARAM: VALUE}, search: {PARAM: "
                           "[VALUES]}}}]"),
    "orderings": ("Insertion orderings", "orderings: [NAME, {NAME: {PARAM: VALUE}}]"),
}

SINGULAR = {"datasets": "dataset loader", "transforms": "transform", "indexes": "index",
            "orderings": "insertion ordering"}


def lookup(name: str) -> list[tuple[str, Any]]:
    """(kind, component) for every registry that has ``name``; ConfigError if none has it."""
    found = [(kind, registry.get(name)) for kind, registry in REGISTRIES.items()
             if name in registry]
    if not found:
        names = sorted({n for registry in REGISTRIES.values() for n in registry.names()})
        raise ConfigError(f"unknown component {name!r}{did_you_mean(name, names)}; expected a "
                          "dataset loader, transform, index or ordering (vecbench list)", "NAME")
    return found


def summary(component: Any) -> str:
    """The first paragraph of the component's docstring, on one line."""
    doc = inspect.getdoc(component) or ""
    return " ".join(doc.split("\n\n")[0].split())


def default_text(param: Param) -> str:
    if param.required:
        return "required"
    value = param.default
    if value is None:
        return "null" if param.nullable else "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    return str(value)


def describe(name: str) -> str:
    """``vecbench describe NAME``: what the component is and each parameter, as text."""
    blocks = []
    for kind, component in lookup(name):
        heading, usage = KINDS[kind]
        lines = [f"{name} ({SINGULAR[kind]}): {summary(component)}",
                 f"  in an experiment: {usage.replace('NAME', name)}"]
        groups = [("parameters", declared(component))]
        if kind == "indexes":
            lines.append("  capabilities: " + (", ".join(sorted(component.capabilities))
                                               or "none (filter, insert, delete: not native)"))
            groups = [("build parameters", declared(component)),
                      ("search parameters", declared(component, "search_params"))]
        for title, params in groups:
            lines.append(f"{title}:" if params else f"{title}: none")
            width = max((len(p.name) for p in params), default=0)
            for param in params:
                lines.append(f"  {param.name:<{width}}  {param.expected()}; default "
                             f"{default_text(param)}")
                if param.doc:
                    lines.append(f"  {'':<{width}}  {param.doc}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --- Markdown for the documentation site ---------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def param_table(params: tuple[Param, ...]) -> list[str]:
    if not params:
        return ["No parameters.", ""]
    lines = ["| parameter | accepts | default | meaning |", "|---|---|---|---|"]
    for param in params:
        lines.append(f"| `{param.name}` | {_cell(param.expected())} | "
                     f"`{_cell(default_text(param))}` | {_cell(param.doc)} |")
    return lines + [""]


def kind_markdown(kind: str) -> str:
    """One reference page: every registered component of ``kind`` with its parameter tables."""
    heading, usage = KINDS[kind]
    lines = [f"# {heading}", "",
             "Generated from the parameter declarations the code validates with "
             "(`vecbench.core.params`); `vecbench describe NAME` prints the same for one component.",
             "", f"In an experiment: `{usage}`.", ""]
    for name in REGISTRIES[kind].names():
        component = REGISTRIES[kind].get(name)
        lines += [f"## `{name}`", "", inspect.getdoc(component) or "", ""]
        if kind == "indexes":
            lines += ["**Build parameters** (`build:`)", ""] + param_table(declared(component))
            lines += ["**Search parameters** (`search:`, swept inside one build)", ""]
            lines += param_table(declared(component, "search_params"))
        else:
            lines += param_table(declared(component))
    return "\n".join(lines)


def metrics_markdown() -> str:
    """The metric table: every metric column family, which way is better, and its plot label."""
    from vecbench.evaluate import metrics

    lines = ["| column | better | label |", "|---|---|---|"]
    for name, metric in metrics.METRICS.items():
        better = "higher" if metric.higher_is_better else "lower"
        lines.append(f"| `{name}` | {better} | {_cell(metric.label)} |")
    return "\n".join(lines)


def cli_markdown(parser: argparse.ArgumentParser) -> str:
    """Every subcommand's ``--help``, as ``parser`` (``vecbench.cli.commands.build_parser()``,
    made with ``$COLUMNS`` set for a stable width) prints it."""
    lines = ["# Command line", "",
             "Generated from the argument parser: each section is that command's `--help`.", "",
             "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            lines += [f"## `vecbench {name}`", "", "```text", sub.format_help().rstrip(),
                      "```", ""]
            for inner in sub._actions:
                if isinstance(inner, argparse._SubParsersAction):
                    for inner_name, leaf in inner.choices.items():
                        lines += [f"### `vecbench {name} {inner_name}`", "", "```text",
                                  leaf.format_help().rstrip(), "```", ""]
    return "\n".join(lines)
