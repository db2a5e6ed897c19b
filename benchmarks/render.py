"""Write benchmarks/RESULTS.md from the measurements the benchmarks recorded.

``make bench`` runs the benchmarks (each writes ``benchmarks/results/<file>/<test>.json`` through
the ``record`` fixture) and then this script, so every figure in RESULTS.md comes from a run of
the committed benchmarks. The prose lives in ``RESULTS.in.md``; each line ``<!-- bench_x -->``
there is replaced by the table of ``bench_x``'s results, and results of benchmarks the template
does not name are appended, so none is dropped.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
MARK = re.compile(r"^<!-- (bench_\w+) -->$", re.M)


def load(results: Path) -> dict[str, list[dict]]:
    by_module: dict[str, list[dict]] = {}
    for path in sorted(results.glob("*/*.json")):
        try:
            entry = json.loads(path.read_text())
            by_module.setdefault(entry["benchmark"], []).append(entry)
        except (ValueError, KeyError) as exc:
            print(f"{path}: not a benchmark result ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}); expected the JSON that "
                  "the record fixture writes: rerun its benchmark", file=sys.stderr)
            sys.exit(2)  # bad input, as vecbench's own commands exit
    return by_module


def table(entries: list[dict]) -> str:
    mark = {True: "✓", False: "✗", None: ""}
    rows = ["| test | measured | target | met | load | date |", "|---|---|---|---|---|---|"]
    for e in sorted(entries, key=lambda e: e["test"]):
        cells = [f"`{e['test']}`", e["measured"], e["target"] or "(context)", mark[e["met"]],
                 f"{e['load']:.1f}", e["date"]]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def machines(by_module: dict[str, list[dict]]) -> str:
    seen: dict[tuple, list[str]] = {}
    for module, entries in sorted(by_module.items()):
        for e in entries:
            key = (e["machine"], tuple(sorted(e["versions"].items())))
            if module not in seen.setdefault(key, []):
                seen[key].append(module)
    lines = []
    for (cpu, versions), modules in seen.items():
        libs = ", ".join(f"{k} {v}" for k, v in versions)
        lines.append(f"- **{cpu}**; {libs}: {', '.join(modules)}")
    return "\n".join(lines)


def render(template: str, by_module: dict[str, list[dict]]) -> str:
    named = set(MARK.findall(template))
    text = MARK.sub(lambda m: table(by_module.get(m.group(1), []))
                    if m.group(1) in by_module else f"*({m.group(1)}: not run yet)*", template)
    text = text.replace("<!-- machines -->", machines(by_module))
    rest = [m for m in sorted(by_module) if m not in named]
    for module in rest:
        text += f"\n\n## {module}\n\n{table(by_module[module])}\n"
    return text


def main() -> None:
    text = render((HERE / "RESULTS.in.md").read_text(), load(HERE / "results"))
    (HERE / "RESULTS.md").write_text(text.rstrip() + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
