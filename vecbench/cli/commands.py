"""The ``vecbench`` command line: one small function per subcommand.

A :class:`VecbenchError` (bad input) is printed as one line on stderr with exit code 2 and no
traceback; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from vecbench import conformance
from vecbench.cli.examples import DESCRIPTION, EXAMPLES, add_examples
from vecbench.cli.reference import describe
from vecbench.core.errors import ConfigError, DataError, VecbenchError
from vecbench.core.params import check_choice, check_int, parse_number
from vecbench.core.registry import REGISTRIES, datasets
from vecbench.data import example_names
from vecbench.datasets.recipes import dataset_entry, fetch, recipe_table
from vecbench.run.experiment import expand_dataset, load_experiment, parse_yaml


def _experiment(path: str):
    return load_experiment(path)


def cmd_validate(args: argparse.Namespace) -> int:
    experiment = _experiment(args.file)
    print(f"{args.file}: ok: {len(experiment.units)} build units, {experiment.n_rows} result rows")
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


# The tables (evaluate/: numpy, pandas) are imported by the commands that use them, so that
# `validate`, `list`, `describe` and `check` stay light.

def cmd_run(args: argparse.Namespace) -> int:
    from vecbench.core import atomic
    from vecbench.evaluate import results as results_module
    from vecbench.run import executors, records, runner

    experiment = _experiment(args.file)
    results = Path(args.results) if args.results else Path("results") / experiment.name
    records.prepare_results(results)
    # the report shows the experiment as it was run (written only when it changed)
    text = Path(args.file).read_bytes()
    saved = results / "experiment.yaml"
    if not saved.is_file() or saved.read_bytes() != text:
        atomic.write_bytes(saved, text)
    choice = executors.choose(args.executor, args.scheduler, args.jobs, args.threads,
                              log=_stderr, in_process=args.in_process)
    summary = runner.run_experiment(experiment, results, force=args.force, jobs=choice.jobs,
                                    threads=choice.threads, quiet=args.quiet,
                                    fail_fast=args.fail_fast, executor=choice.executor,
                                    log=_stderr, rehash=args.rehash, isolated=choice.isolated,
                                    steal_claims=args.steal_claims)
    table = results / "results.csv"
    if summary.run or summary.waited or not table.is_file():
        csv_path, parquet_path, n_rows = results_module.collect(results, log=_stderr)
        rows = f"{n_rows} rows"
    else:
        csv_path, parquet_path, rows = table, results / "results.parquet", "table unchanged"
    print(f"{experiment.name}: ran {summary.run} build units, "
          f"{summary.skipped} already done; {rows}")
    print(f"table: {csv_path}")
    print(f"       {parquet_path}")
    for line in summary.failed:
        _stderr(f"failed: {line}")
    if summary.failed:
        crashed = f" ({summary.crashed} crashed: a bug; tracebacks in their run records)" \
            if summary.crashed else ""
        stop = "; stopped at the first (--fail-fast)" if summary.stopped_early else ""
        _stderr(f"{len(summary.failed)} of {summary.run} units failed{crashed}{stop}")
        return 1
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from vecbench.evaluate import results

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics \
        else None
    csv_path, parquet_path, n_rows = results.collect(args.dir, metrics, include_all=args.all,
                                                     log=_stderr)
    print(f"{n_rows} rows -> {csv_path}, {parquet_path}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    print(describe(args.name))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(REGISTRIES)
    for kind in kinds:
        print(f"{kind}: {', '.join(REGISTRIES[kind].names())}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    results = conformance.run(args.name, args.kind)
    for result in results:
        print(result.line())
    return 1 if any(result.ok is False for result in results) else 0


def _dataset_components(spec: str) -> list:
    """SPEC (a dataset entry in YAML flow form, or a recipe name) -> validated components."""
    try:
        entry = parse_yaml(spec, "SPEC")
    except ConfigError as exc:
        raise ConfigError(f"{exc.message}; expected a dataset such as digits or "
                          "'npy: {base: b.npy, queries: q.npy}'", "SPEC") from None
    return expand_dataset(dataset_entry(entry, "SPEC"), where="SPEC")


def cmd_datasets_list(args: argparse.Namespace) -> int:
    print(f"loaders: {', '.join(datasets.names())}")
    for line in recipe_table():
        print(line)
    return 0


def cmd_datasets_info(args: argparse.Namespace) -> int:
    from vecbench.run import stages
    from vecbench.datasets.guards import describe

    for i, component in enumerate(_dataset_components(args.spec)):
        if i:
            print()
        print("\n".join(describe(stages.load(component, str(Path.cwd())))))
    return 0


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    for path in fetch(args.name, args.dest, log=lambda line: print(line, file=sys.stderr)):
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from vecbench.compute import groundtruth

    from vecbench.run import stages
    from vecbench.datasets.export import export_dataset

    components = _dataset_components(args.spec)
    if len(components) != 1:
        raise ConfigError(f"expands to {len(components)} datasets; expected one", "SPEC")
    dataset = stages.load(components[0], str(Path.cwd()))
    if args.k > len(dataset.base):   # before the (nq x k) neighbour arrays are allocated
        raise ConfigError(f"{args.k} is larger than the {len(dataset.base)} base vectors of "
                          f"{dataset.name}; expected at most {len(dataset.base)}", "--k")
    truth = groundtruth.ground_truth(dataset.base, dataset.queries, dataset.metric,
                                     dataset.fingerprint(), args.k)
    ids, scores = truth.ids[:, :args.k], truth.distances[:, :args.k]
    # distances as ann-benchmarks writes them (L2, 1 - cosine); .bin keeps faiss's (squared L2)
    if dataset.metric == "cos":
        scores = 1.0 - scores
    elif dataset.metric == "ip":
        scores = -scores
    elif args.format == "hdf5":
        scores = np.sqrt(np.maximum(scores, 0.0))
    for path in export_dataset(dataset, args.out, args.format, ids, scores):
        print(path)
    return 0


def cmd_lid(args: argparse.Namespace) -> int:
    import json
    import re

    from vecbench.compute import lid

    from vecbench.present import plots
    k = check_int("--k", lid.DEFAULT_K if args.k is None else args.k, 2)
    estimator = check_choice("--estimator", args.estimator, lid.ESTIMATORS)
    output = plots.check_output(args.output) if args.output else None
    reports, values = zip(*(_lid_report(spec, k, estimator) for spec in args.spec))
    names = [report["dataset"] for report in reports]
    output = output or "lid-" + "+".join(re.sub(r"[^A-Za-z0-9._-]+", "_", n) for n in names) + ".png"
    path = plots.save(plots.lid(dict(zip(names, values))), output)
    if args.json:  # one SPEC: an object; several: a list of them
        for report in reports:
            report["histogram"] = str(path)
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
        return 0
    for report in reports:
        pointwise = report["pointwise"]
        print(f"{report['dataset']}: {report['n']} x {report['dim']}, metric {report['metric']}")
        print(f"global ID: twonn {report['twonn']:.2f}, mle {report['mle']:.2f}, "
              f"pca90 {report['pca90']}, pca95 {report['pca95']}")
        print(f"pointwise {estimator} (k={k}, {pointwise['graph']} graph): mean "
              f"{pointwise['mean']:.2f}, median {pointwise['median']:.2f}, p10 "
              f"{pointwise['p10']:.2f}, p90 {pointwise['p90']:.2f}"
              + (f", {pointwise['n_infinite']} infinite" if pointwise["n_infinite"] else ""))
    print(f"histogram -> {path}")
    return 0


def _lid_report(spec: str, k: int, estimator: str):
    """Global ID estimates and the pointwise distribution of one dataset SPEC (a JSON-ready
    dict), and the pointwise values for the histogram."""
    import numpy as np

    from vecbench.compute import lid

    from vecbench.run import stages

    components = _dataset_components(spec)
    if len(components) != 1:
        raise ConfigError(f"{spec!r} expands to {len(components)} datasets; expected one", "SPEC")
    dataset = stages.load(components[0], str(Path.cwd()))
    values, info = lid.cached_pointwise_lid(dataset.fingerprint(), dataset.base, k, estimator,
                                            metric=dataset.metric, return_info=True)
    estimates = lid.global_estimates(dataset.base, k, metric=dataset.metric)
    finite = values[np.isfinite(values)]  # inf: all non-zero neighbours equidistant (see lid)
    if len(finite) == 0:
        raise DataError(f"{dataset.name}: no finite pointwise LID at k={k}; try a larger --k")
    p10, median, p90 = np.percentile(finite, [10, 50, 90])
    pointwise = {"k": k, "estimator": estimator, "mean": float(np.mean(finite)),
                 "median": float(median), "p10": float(p10), "p90": float(p90),
                 "n_infinite": int(len(values) - len(finite)), "graph": info["method"]}
    return {"dataset": dataset.name, "n": len(dataset.base), "dim": dataset.dim,
            "metric": dataset.metric, **estimates, "pointwise": pointwise}, values


def _plot_table(source: str, kind: str):
    """The table a plot reads: the results (or a csv/parquet); for ``lid``, a LID table."""
    if kind == "lid" and Path(source).is_dir():
        from vecbench.present.plots import lid_table
        return lid_table(source)  # lid.parquet/csv, else the run records' query LID
    from vecbench.evaluate.compare import load_table

    return load_table(source)


def cmd_plot(args: argparse.Namespace) -> int:
    from vecbench.evaluate import compare
    from vecbench.present import plots

    frame = _plot_table(args.dir, args.kind)
    if args.where:
        frame = compare.select_rows(frame, args.where)
    if args.kind == "lid":
        options = {"column": args.x or args.y, "hue": args.hue}
    else:
        options = {"x": args.x, "y": args.y, "hue": args.hue, "facet": args.facet}
        if args.kind == "tradeoff":
            options["budgets"] = args.budget or None
    figure = plots.plot(args.kind, frame, **options)
    if args.title:
        figure.suptitle(args.title)
    path = plots.save(figure, args.output)
    print(f"{args.kind} plot -> {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from vecbench.present.report import build_report

    html_path, md_path = build_report(args.dir, args.out)
    print(f"report -> {html_path}, {md_path}")
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from vecbench.evaluate import compare, operating
    from vecbench.evaluate.results import CODES, RESIDENT, memory_column

    budgets = [compare.parse_budget(text) for text in args.budget or []]
    frame = compare.load_table(args.dir, with_specs=True)
    if args.dataset:
        compare.check_column(frame, "dataset", "--dataset")
        frame = frame[frame["dataset"].astype(str) == args.dataset]
        if frame.empty:
            raise ConfigError(f"no rows for dataset {args.dataset!r}", "--dataset")
    objective = args.maximize or args.minimize
    frame = compare.with_points(frame, [objective] + [b.column for b in budgets])
    if operating.is_point(objective):  # the rows that attain it, not the rest of their group
        frame = frame[frame[f"{objective}.at"].fillna(False).astype(bool)]
    if (note := compare.hosts_note(frame)) is not None:
        _stderr(note)
    memory = memory_column(frame)
    if memory == RESIDENT and any(b.column == CODES for b in budgets):
        _stderr(f"note: {CODES} counts the codes alone; {RESIDENT} counts what a configuration "
                "keeps in memory (graph links, rescoring copies, codebooks and scales too)")
    row, n_ok = compare.best_under_budget(frame, budgets, objective, bool(args.maximize))
    if row is None:
        print(f"no configuration meets {' and '.join(b.text() for b in budgets)}",
              file=sys.stderr)
        return 1
    k = int(row.get("k", 10))
    shown = [objective] + [b.column for b in budgets] + [
        f"recall@{k}", "ndcg@10", "qps", "p99_ms", RESIDENT, CODES, "build_s"]
    print(compare.best_yaml(row, budgets, objective, bool(args.maximize), n_ok,
                            list(dict.fromkeys(shown))), end="")
    counted = ("codes, graph links, rescoring copies and per-dataset parameters"
               if memory == RESIDENT else f"the codes alone: a table collected before {RESIDENT}")
    print(f"# memory: {memory} ({counted})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from vecbench.evaluate import compare

    rules = compare.parse_rules(args.fail) if args.fail else []
    base, new = compare.load_table(args.base), compare.load_table(args.new)
    points = [rule.metric for rule in rules]
    base, new = compare.with_points(base, points), compare.with_points(new, points)
    shown = [c for c in ("recall@" + str(int(base["k"].iloc[0])) if "k" in base else "",
                         "ndcg@10", "qps") if c in base.columns and c in new.columns]
    result = compare.compare(base, new, rules, metrics=shown, allow_missing=args.allow_missing)
    print(compare.format_table(result.table) if len(result.table) else
          "(no configuration matched)")
    if (note := compare.hosts_note(base, new)) is not None:
        print(note)
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def cmd_paired(args: argparse.Namespace) -> int:
    from vecbench.evaluate import compare, paired

    frame = paired.per_query_frame(args.dir)
    if args.where:
        frame = compare.select_rows(frame, args.where)
    extra = args.show.split(",") if args.show else ()
    within = args.within.split(",")
    margin = args.margin / args.scale if args.margin is not None else None
    table = paired.paired_table(
        frame, args.baseline, args.metric, resamples=args.resamples, seed=args.seed,
        extra=extra, within=within, seeds=None if args.seeds == "none" else args.seeds,
        select_on=args.select_on.split(",") if args.select_on else None,
        split_seed=args.split_seed, margin=margin, verdicts_=args.verdicts, alpha=args.alpha,
        scale=args.scale)
    if args.select_on and not table.empty:  # the split is part of the result: say which
        print(f"The winner of each {args.select_on} group, selected on "
              f"{int(table['selected_on'].iloc[0])} queries and reported on the other "
              f"{int(table['queries'].iloc[0])} (split seed {args.split_seed}).\n")
    if args.sort:  # COLUMN,-COLUMN,...: the first key first, "-" descending
        keys = [key.strip() for key in args.sort.split(",") if key.strip()]
        for key in keys:
            compare.check_column(table, key.lstrip("-"), "--sort")
        table = table.sort_values([key.lstrip("-") for key in keys], kind="stable",
                                  ascending=[not key.startswith("-") for key in keys])
    if args.csv:
        from vecbench.core import atomic

        atomic.write_text(args.csv, table.to_csv(index=False))
    drop = args.drop.split(",") if args.drop else ()
    print(paired.format_markdown(table, scale=args.scale, relative=args.relative, drop=drop),
          end="")
    return 0


def _number(kind: str, low: float | None = None, high: float | None = None):
    """An argparse ``type`` reading a number through the checks YAML values get (ASCII digits,
    finite, bounded); argparse names the option in the one-line error."""
    def read(text: str) -> int | float:
        try:
            return parse_number("", text, kind, low, high)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    read.__name__ = kind  # argparse's fallback wording: "invalid int value"
    return read


#: Bounds of the numeric options: more workers or threads than this is no machine vecbench
#: runs on; more bootstrap resamples than this allocate resamples x queries floats for nothing.
MAX_WORKERS = 1024
MAX_RESAMPLES = 100_000
_threads = _number("int", 1, MAX_WORKERS)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a one-line ConfigError (exit 2) like every bad input."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from vecbench import __version__
    parser = _Parser(prog="vecbench", description=DESCRIPTION, epilog=EXAMPLES["vecbench"],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vecbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run an experiment YAML")
    p.add_argument("file", nargs="?", help="the experiment YAML (or --example NAME)")
    p.add_argument("--example", help="run a packaged example instead of FILE: "
                   + ", ".join(_example_names()))
    p.add_argument("--results", help="results folder (default results/<name>)")
    p.add_argument("--force", action="store_true", help="rerun units already complete")
    p.add_argument("--rehash", action="store_true",
                   help="hash every data file in full instead of trusting a file whose size and "
                        "modification time are unchanged (the table's data_hashing column says "
                        "which was done)")
    p.add_argument("--jobs", type=_threads, default=1,
                   help="build units in N worker processes, or N local Dask workers "
                   "(timings marked contended)")
    p.add_argument("--threads", type=_threads, default=None,
                   help="threads for faiss, hnswlib and BLAS (default: all cores)")
    p.add_argument("--executor", choices=("local", "processes", "dask"), default=None,
                   help="where units run: this process, --jobs local processes, or Dask "
                   "(default: dask when a scheduler address is given, else processes when "
                   "--jobs > 1, else local)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run units on this Dask cluster (default $VECBENCH_SCHEDULER); "
                   "--executor dask without it starts a local cluster")
    p.add_argument("--in-process", action="store_true",
                   help="run units in this process (or, with --jobs, a pool of long-lived "
                   "processes; on Dask, in the Dask worker's process) instead of a worker "
                   "process each; for debugging: a crash of a native library then ends the run")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first failed unit (default: record it and go on)")
    p.add_argument("--steal-claims", action="store_true",
                   help="take over units claimed by a run on another host that has not "
                   "refreshed its claims for 5 minutes (a container restarted under a new "
                   "hostname, say); without it such claims stop the run with one line")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="expand and check an experiment without data")
    p.add_argument("file", nargs="?", help="the experiment YAML (or --example NAME)")
    p.add_argument("--example", help="a packaged example instead of FILE")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("collect", help="compute metrics from the run records' raw results; "
                       "write results.csv, results.parquet and per_query.parquet")
    p.add_argument("dir")
    p.add_argument("--metrics", help="more metrics, e.g. recall@1,recall@5,mrr@10 (computed "
                   "from the raw results, no unit reruns)")
    p.add_argument("--all", action="store_true",
                   help="include records of other grids in the folder (default: the "
                        "experiment's current units only)")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", choices=["datasets", "transforms", "indexes", "orderings"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="a component's parameters: accepted values, defaults, "
                                        "meaning")
    p.add_argument("name", help="a dataset loader, transform, index or ordering (vecbench list)")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("check", help="run the conformance checks of a registered component "
                                     "(a plugin's too): one line per check; exit 1 on a FAIL")
    p.add_argument("name", help="an index, transform, dataset loader, ordering or metric")
    p.add_argument("--kind", choices=["indexes", "transforms", "datasets", "orderings",
                                      "metrics"], help="where to look NAME up, when it is in "
                                                       "several")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("datasets", help="list, inspect and fetch datasets")
    dsub = p.add_subparsers(dest="datasets_command", required=True, parser_class=_Parser)
    p = dsub.add_parser("list", help="dataset loaders and the packaged recipes")
    p.set_defaults(func=cmd_datasets_list)
    p = dsub.add_parser("info", help="shape, metric, norms, duplicates, judgments of a dataset")
    p.add_argument("spec", help="a recipe name, or a dataset entry in YAML flow form: "
                   "'npy: {base: b.npy, queries: q.npy, metric: cos}'")
    p.set_defaults(func=cmd_datasets_info)
    p = dsub.add_parser("fetch", help="download a recipe's files, verify checksums and layout")
    p.add_argument("name")
    p.add_argument("--dest", help="data folder (default $VECBENCH_DATA, else the cache's data/)")
    p.set_defaults(func=cmd_datasets_fetch)

    p = sub.add_parser("export", help="write a dataset with exact ground truth for other tools")
    p.add_argument("spec", help="a recipe name or a dataset entry (as for `datasets info`)")
    p.add_argument("out", help="output file (hdf5) or folder / file prefix (others)")
    p.add_argument("--format", required=True, choices=["hdf5", "parquet", "fvecs", "fbin"])
    p.add_argument("--k", type=_number("int", 1), default=100,
                   help="neighbours per query (default 100)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("lid", help="intrinsic dimension of a dataset: global estimates and a "
                       "histogram of pointwise LID")
    p.add_argument("spec", nargs="+", help="a recipe name or a dataset entry (as for `datasets "
                                           "info`); several share one histogram")
    p.add_argument("--k", type=_number("int", 2), help="neighbours per point (default 20)")
    p.add_argument("--estimator", default="mle", help="pointwise: mle (default), tle, mada, mom")
    p.add_argument("--json", action="store_true", help="print the estimates as JSON")
    p.add_argument("-o", "--output", help="histogram FILE.png, .svg or .pdf (default lid-<dataset>.png)")
    p.set_defaults(func=cmd_lid)
    p = sub.add_parser("plot", help="plot a results folder (pareto, tradeoff, ordering, lid, "
                                    "steps)")
    p.add_argument("dir", help="results folder, results.csv or results.parquet")
    p.add_argument("--kind", default="pareto",
                   choices=["pareto", "tradeoff", "ordering", "lid", "steps"])
    p.add_argument("-o", "--output", required=True, help="FILE.png, FILE.svg or FILE.pdf")
    p.add_argument("--x", help="column on the x axis")
    p.add_argument("--y", help="column on the y axis")
    p.add_argument("--hue", help="column that splits series")
    p.add_argument("--budget", type=_number("number"), action="append",
                   help="tradeoff: an x budget line (repeatable)")
    p.add_argument("--facet", help="column that splits panels (default dataset)")
    p.add_argument("--where", help="pandas query keeping rows, e.g. \"index == 'flat'\"")
    p.add_argument("--title", help="figure title")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="write report.html and report.md for a results folder")
    p.add_argument("dir")
    p.add_argument("--out", help="output folder (default: the results folder)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("best", help="the best configuration under budgets, as YAML")
    p.add_argument("dir", help="results folder, results.csv or results.parquet")
    p.add_argument("--budget", action="append", help="COLUMN<=NUMBER (repeatable)")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--maximize", help="metric column to maximize")
    goal.add_argument("--minimize", help="metric column to minimize")
    p.add_argument("--dataset", help="only rows of this dataset")
    p.set_defaults(func=cmd_best)

    p = sub.add_parser("paired", help="per-query differences against a baseline, with "
                                      "bootstrap 95%% intervals")
    p.add_argument("dir", help="results folder (its runs/*.json keep per-query values)")
    p.add_argument("--baseline", required=True,
                   help="pandas query picking one baseline row per dataset, "
                        "e.g. \"pipeline == 'float32' and index == 'flat'\"")
    p.add_argument("--metric", default="ndcg@10", help="a per-query metric (default ndcg@10)")
    p.add_argument("--where", help="pandas query keeping rows, e.g. \"index == 'flat'\"")
    p.add_argument("--within", default="dataset",
                   help="COLUMN,... whose groups each get their own baseline "
                        "(default dataset), e.g. dataset,bytes_per_vector")
    p.add_argument("--scale", type=_number("number", -1e6, 1e6), default=100.0,
                   help="multiply differences (default 100: points)")
    p.add_argument("--resamples", type=_number("int", 1, MAX_RESAMPLES), default=10_000)
    p.add_argument("--seed", type=_number("int", 0), default=0)
    p.add_argument("--csv", help="also write the table (unscaled) to this CSV file")
    p.add_argument("--relative", action="store_true",
                   help="add the difference as a percentage of the baseline")
    p.add_argument("--drop", help="COLUMN,... left out of the printed table")
    p.add_argument("--show", help="COLUMN,... of the results shown beside, e.g. recall@10")
    p.add_argument("--sort", help="COLUMN,... to sort by (-COLUMN: descending)")
    p.add_argument("--seeds", default="repeat",
                   help="the column of the seed axis (default repeat): a configuration's rows "
                        "that differ only in it are one row whose interval resamples seeds, "
                        "then queries; none: every row on its own")
    p.add_argument("--select-on", metavar="COLUMN,...",
                   help="keep only the winner of each group of these columns, picked on a "
                        "seeded half of the queries and reported on the other half")
    p.add_argument("--split-seed", type=_number("int", 0), default=0,
                   help="seed of the --select-on query split (default 0)")
    p.add_argument("--margin", type=_number("number", 0, 1e6),
                   help="equivalence margin in the printed units (points with --scale 100): "
                        "adds TOST and Benjamini-Hochberg verdicts")
    p.add_argument("--verdicts", action="store_true",
                   help="add Benjamini-Hochberg better/worse verdicts (q) across the rows")
    p.add_argument("--alpha", type=_number("number", 0, 1), default=0.05,
                   help="false discovery rate of the verdicts (default 0.05)")
    p.set_defaults(func=cmd_paired)

    p = sub.add_parser("compare", help="compare two result tables; exit 1 on a regression")
    p.add_argument("base", help="baseline results folder, results.csv or results.parquet")
    p.add_argument("new")
    p.add_argument("--fail", help="rules: changes from BASE (recall@10:-0.005,qps:-10%%) or "
                   "bounds on NEW (recall@10>=0.95); a configuration of BASE missing or "
                   "failed in NEW, or a rule metric not measured, also fails")
    p.add_argument("--allow-missing", action="store_true",
                   help="report configurations of BASE missing or failed in NEW, and rule "
                   "metrics not measured, without failing")
    p.set_defaults(func=cmd_compare)
    add_examples(parser)
    return parser


def _example_names() -> list[str]:
    return example_names()


def _check_outputs(args: argparse.Namespace) -> None:
    """Where a command writes must be of the right kind before any work: a file option that
    names a folder, or a folder option that names a file, is one line (not a traceback after
    the work is done)."""
    files = [("-o", getattr(args, "output", None)), ("--csv", getattr(args, "csv", None))]
    if getattr(args, "command", None) == "export" and args.format == "hdf5":
        files.append(("OUT", args.out))
    for option, value in files:
        if value and Path(value).is_dir():
            raise ConfigError(f"{value!r} is a folder; expected a file to write", option)
    folder = getattr(args, "out", None) if getattr(args, "command", None) == "report" else None
    if folder and Path(folder).exists() and not Path(folder).is_dir():
        raise ConfigError(f"{folder!r} is a file; expected a folder to write the report into",
                          "--out")


def _experiment_file(args: argparse.Namespace) -> None:
    """``run``/``validate``: FILE, or --example NAME resolved to the packaged YAML."""
    if getattr(args, "command", None) not in ("run", "validate"):
        return
    if args.example is not None and args.file is not None:
        raise ConfigError(f"got both FILE ({args.file}) and --example {args.example}; "
                          "expected one", "--example")
    if args.example is not None:
        from vecbench.data import example_path

        args.file = str(example_path(args.example))
    elif args.file is None:
        raise ConfigError("expected an experiment FILE or --example NAME (e.g. --example "
                          "quickstart)", f"vecbench {args.command}")


def _interruptible() -> None:
    """Ctrl-C raises KeyboardInterrupt even where SIGINT came in ignored (a job a script put in
    the background starts that way, and Python then keeps it ignored)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


#: Errors of the machine, not of vecbench (full disk, read-only or forbidden folder): one line,
#: exit 2, like bad input. Records already written stay (each is written atomically).
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                   errno.EFBIG, errno.EIO}


#: The exit status of a command whose reader closed its output (as if killed by SIGPIPE).
EXIT_CLOSED_PIPE = 128 + 13


def main(argv: list[str] | None = None) -> int:
    _interruptible()
    try:
        args = build_parser().parse_args(argv)
        _experiment_file(args)
        _check_outputs(args)
        code = args.func(args)
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's exit flush
        return code
    except BrokenPipeError:  # output piped into `head`, `true`: the end, as for Unix tools
        _discard_stdout()
        return EXIT_CLOSED_PIPE
    except VecbenchError as exc:
        print(f"vecbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _MACHINE_ERRNOS:
            raise
        print(f"vecbench: error: {exc.filename or 'a file'}: {exc.strerror} "
              f"({errno.errorcode.get(exc.errno, exc.errno)}); expected a writable folder with "
              "free space; completed units are saved", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vecbench: interrupted; completed units are saved", file=sys.stderr)
        return 130


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's exit flush of what is still buffered
    cannot raise BrokenPipeError again (and print a traceback) after main returns."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
