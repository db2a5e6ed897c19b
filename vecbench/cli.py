"""The ``vecbench`` command line: one small function per subcommand.

A :class:`VecbenchError` (bad input) is printed as one line on stderr with exit code 2 and no
traceback; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vecbench.errors import ConfigError, VecbenchError


def _experiment(path: str):
    from vecbench.experiment import load_experiment

    return load_experiment(path)


def cmd_validate(args: argparse.Namespace) -> int:
    experiment = _experiment(args.file)
    print(f"{args.file}: ok: {len(experiment.units)} build units, {experiment.n_rows} result rows")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from vecbench import runner, store

    experiment = _experiment(args.file)
    results = Path(args.results) if args.results else Path("results") / experiment.name
    summary = runner.run_experiment(experiment, results, force=args.force, jobs=args.jobs,
                                    threads=args.threads, progress=sys.stderr.isatty(),
                                    log=lambda line: print(line, file=sys.stderr))
    csv_path, parquet_path, n_rows = store.collect(results)
    print(f"{experiment.name}: ran {summary['run']} build units, "
          f"{summary['skipped']} already done; {n_rows} rows")
    print(f"table: {csv_path}")
    print(f"       {parquet_path}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from vecbench import store

    csv_path, parquet_path, n_rows = store.collect(args.dir)
    print(f"{n_rows} rows -> {csv_path}, {parquet_path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from vecbench.registry import REGISTRIES

    kinds = [args.kind] if args.kind else list(REGISTRIES)
    for kind in kinds:
        print(f"{kind}: {', '.join(REGISTRIES[kind].names())}")
    return 0


def _threads(value: str) -> int:
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return threads


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a one-line ConfigError (exit 2) like every bad input."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vecbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run an experiment YAML")
    p.add_argument("file")
    p.add_argument("--results", help="results folder (default results/<name>)")
    p.add_argument("--force", action="store_true", help="rerun units already complete")
    p.add_argument("--jobs", type=_threads, default=1,
                   help="build units in N worker processes (timings marked contended)")
    p.add_argument("--threads", type=_threads, default=None,
                   help="threads for faiss, hnswlib and BLAS (default: all cores)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="expand and check an experiment without data")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("collect", help="write results.csv and results.parquet from run files")
    p.add_argument("dir")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", choices=["datasets", "transforms", "indexes", "orderings"])
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except VecbenchError as exc:
        print(f"vecbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vecbench: interrupted; completed units are saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
