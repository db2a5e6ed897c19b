"""The best row under budgets, and the configuration it names as regression-test YAML
(``vecbench best``)."""

from __future__ import annotations

import json
import re

from vecbench.evaluate.results import memory_column
from vecbench.evaluate.rules import Budget
from vecbench.evaluate.selection import check_column, key_text


def best_under_budget(frame, budgets: list[Budget], objective: str, maximize: bool = True):
    """The row that optimizes ``objective`` among rows within every budget (None if none is)."""
    import pandas as pd

    check_column(frame, objective, "--maximize" if maximize else "--minimize")
    for budget in budgets:
        check_column(frame, budget.column, "--budget")
    keep = frame["status"].fillna("ok") == "ok" if "status" in frame.columns else \
        pd.Series(True, index=frame.index)
    for budget in budgets:
        keep &= budget.mask(frame)
    candidates = frame[keep].copy()
    candidates["_objective"] = pd.to_numeric(candidates[objective], errors="coerce")
    candidates = candidates.dropna(subset=["_objective"])
    if candidates.empty:
        return None, 0
    # ties go to the faster configuration, then the one that needs less memory
    order = [("_objective", not maximize)]
    if "qps" in candidates.columns:
        order.append(("qps", False))
    if memory_column(candidates) in candidates.columns:
        order.append((memory_column(candidates), True))
    candidates = candidates.sort_values([c for c, _ in order], ascending=[a for _, a in order],
                                        kind="stable")
    return candidates.iloc[0], len(candidates)


def configuration(row) -> dict:
    """A row's configuration in the regression-test form (dataset, pipeline, index, k).

    Exact when the row carries ``_spec`` (read from run files); otherwise rebuilt from the
    table's labels (``pca(n_components=64)|float8(format=e4m3)``), where dataset parameters are
    not recorded.
    """
    if "_spec" in row.index and isinstance(row["_spec"], str):
        spec = json.loads(row["_spec"])
        index = spec["index"]
        out = {"dataset": spec["dataset"], "pipeline": spec["pipeline"],
               "index": {index["name"]: {"build": index.get("build", {}),
                                         "search": spec.get("search", {}),
                                         **({"rescore": spec["row_rescore"]}
                                            if spec.get("row_rescore") else {})}},
               "ordering": _ordering_value(spec.get("ordering", "original")),
               "k": int(spec.get("k", row.get("k", 10)))}
        return out
    build = {c[6:]: _scalar(row[c]) for c in row.index if c.startswith("build.")
             and key_text(row[c]) != ""}
    search: dict = {}
    for c in row.index:
        if c.startswith("search.") and key_text(row[c]) != "":
            # search.arrival.rate -> search: {arrival: {rate: ...}}, as the YAML wrote it
            *outer, name = c[7:].split(".")
            place = search
            for part in outer:
                place = place.setdefault(part, {})
            place[name] = _scalar(row[c])
    pipeline = [] if row.get("pipeline", "float32") in ("float32", "", None) else \
        [_parse_label(step) for step in str(row["pipeline"]).split("|")]
    ordering = _parse_label(str(row.get("ordering", "original")))
    rescoring = {c[8:]: _scalar(row[c]) for c in row.index if c.startswith("rescore.")
                 and key_text(row[c]) != ""}
    return {"dataset": {str(row["dataset"]): {}}, "pipeline": pipeline,
            "index": {str(row["index"]): {"build": build, "search": search,
                                          **({"rescore": rescoring} if rescoring else {})}},
            "ordering": _ordering_value(ordering), "k": int(row.get("k", 10))}


def _ordering_value(ordering):
    if isinstance(ordering, dict) and len(ordering) == 1:
        name, params = next(iter(ordering.items()))
        return name if not params else ordering
    return ordering


def _scalar(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _parse_label(label: str) -> dict | str:
    """``pca(n_components=64)`` -> ``{pca: {n_components: 64}}``; ``float16`` -> ``{float16: {}}``."""
    import yaml

    match = re.match(r"^([^()]+)\((.*)\)$", label)
    if not match:
        return {label: {}}
    params = {}
    for item in filter(None, match.group(2).split(",")):
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    return {match.group(1): params}


def best_yaml(row, budgets: list[Budget], objective: str, maximize: bool, n_ok: int,
              metrics: list[str]) -> str:
    """The winner as a YAML snippet for a ``.vecbench.yaml`` (or one entry of ``cases:``)."""
    import yaml

    goal = f"{'maximize' if maximize else 'minimize'} {objective}"
    within = " and ".join(b.text() for b in budgets) or "no budget"
    lines = [f"# vecbench best: {goal} subject to {within} ({n_ok} rows qualify)"]
    config = configuration(row)
    for key, value in config.items():
        # one line per key, flow style, like a hand-written .vecbench.yaml
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
        lines.append(f"{key}: {text.strip().removesuffix('...').strip()}")
    lines.append("# measured:")
    for metric in metrics:
        if metric in row.index and key_text(row[metric]) != "":
            value = row[metric]
            shown = f"{value:.6g}" if isinstance(value, (int, float)) else value
            lines.append(f"#   {metric}: {shown}")
    return "\n".join(lines) + "\n"
