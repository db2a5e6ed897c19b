"""Run records in, tables out: the one reader of ``runs/`` (collect, compare, paired, report,
plots and the pytest plugin all go through it).

A row is one search setting of one unit. Metrics are computed here, from the unit's raw results
and its dataset's reference answers, through the registry in :mod:`vecbench.evaluate.metrics`, so a
metric added later applies to runs made before it. Parameters are typed columns (``build.M``
stays an integer; each pipeline step's parameters are ``pipeline.<step>.<name>``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vecbench.evaluate import operating, steps
from vecbench.run import records
from vecbench.core import atomic
from vecbench.core.errors import ConfigError, DataError
from vecbench.core.cache import clean_temporaries
from vecbench.run.schema import RawResults, RawSearch, SettingInfo, UnitRecord

FIRST_COLUMNS = ["experiment", "dataset", "pipeline", "pipeline_kind", "index"]
MIDDLE_COLUMNS = ["ordering", "repeat", "k", "filter"]
RUN_COLUMNS = ["filter_truth_s", "build_s", "fit_s", "encode_s", "resident_bytes_per_vector", "bytes_per_vector",
               "graph_bytes_per_vector", "total_bytes_per_vector", "index_bytes",
               "compression_ratio", "quantization", "peak_rss_bytes", "threads", "build_threads",
               "deterministic", "contended", "host", "worker", "data_hashing", "status", "reason"]
#: The columns that identify a configuration (with every build.*, search.*, rescore.*).
CONFIG_COLUMNS = ("dataset", "pipeline", "index", "ordering", "repeat", "k", "filter", "runbook",
                  "step")
CONFIG_PREFIXES = ("build.", "search.", "rescore.", "filter.")
#: Columns across whose repeats a mean and 95% interval are added (``{k}`` = the unit's k).
REPEATED_METRICS = ("recall@{k}", "recall_eps@{k}", "ndcg@10", "sustainable_rate")


def config_columns(*frames, repeat: bool = True) -> list[str]:
    """The columns of ``frames`` that identify a configuration, in one fixed order."""
    seen: list[str] = []
    for frame in frames:
        for column in frame.columns:
            if (column in CONFIG_COLUMNS or column.startswith(CONFIG_PREFIXES)) and \
                    column not in seen and (repeat or column != "repeat"):
                seen.append(column)
    order = {name: i for i, name in enumerate(CONFIG_COLUMNS)}
    rank = {"build.": 2.5, "search.": 2.7, "rescore.": 2.8, "filter.": 6.5}
    return sorted(seen, key=lambda c: (order.get(c, rank.get(c[:c.index(".") + 1], 9)
                                                 if "." in c else 9), c))


# ---------------------------------------------------------------------------------------------
# Rows

def base_row(record: UnitRecord) -> dict:
    """The columns a unit's rows share: labels, typed parameters, what each stage reported."""
    labels = record.unit.labels
    row = {"experiment": record.unit.experiment,
           "dataset": record.dataset.name if record.dataset else labels["dataset_entry"],
           "pipeline": labels["pipeline"], "index": labels["index"],
           "ordering": labels["ordering"], "repeat": labels["repeat"], "k": labels["k"],
           **labels["columns"], "threads": record.threads,
           "host": record.host, "worker": record.worker,
           "peak_rss_bytes": record.peak_rss_bytes,
           "status": record.status, "reason": record.reason or ""}
    if not record.ok:
        return row
    encode, build = record.encode, record.build
    if build.compresses:  # the index quantizes float32 itself: count what it stores
        size, quantization = build.code_bytes_per_vector, "index"
    else:
        size, quantization = encode.bytes_per_vector, encode.quantization
    row.update({"build_s": build.build_s, "fit_s": encode.fit_s,
                "encode_s": encode.encode_s, "bytes_per_vector": float(size),
                "graph_bytes_per_vector": float(build.graph_bytes_per_vector),
                "index_bytes": build.index_bytes,
                "resident_bytes_per_vector": resident_bytes(record),
                "compression_ratio": 4.0 * record.dataset.dim / float(size),
                "quantization": quantization, "build_threads": build.threads,
                "deterministic": build.deterministic, "contended": record.contended})
    # what the engine said of itself (server and extension versions, load and index times)
    row.update({f"details.{name}": value for name, value in build.details.items()
                if isinstance(value, (str, int, float, bool)) or value is None})
    if encode.trustworthiness is not None:
        row[f"trustworthiness@{labels['k']}"] = encode.trustworthiness
    if labels.get("cost"):
        row.update(cost_columns(record, labels["cost"], row["resident_bytes_per_vector"]))
    return row


#: Hours in a month (365.25 x 24 / 12), for monthly prices.
HOURS_PER_MONTH = 730.5


def cost_columns(record: UnitRecord, cost: dict, resident: float) -> dict:
    """``cost.*`` as given, and ``usd_per_gb_month``: the machine's price per GB of memory
    (``memory_gb``, default the host's) times the memory this configuration holds per GB of the
    original float32 vectors: what keeping a GB of embeddings searchable costs a month."""
    out = {f"cost.{name}": value for name, value in cost.items()}
    memory_gb = cost.get("memory_gb")
    if memory_gb is None:
        memory = ((record.contention or {}).get("before") or {}).get("memory_bytes")
        memory_gb = memory / 1e9 if memory else None
    if memory_gb and record.dataset.dim:
        usd_per_ram_gb_month = cost["usd_per_hour"] * HOURS_PER_MONTH / memory_gb
        out["usd_per_gb_month"] = usd_per_ram_gb_month * resident / (4.0 * record.dataset.dim)
    return out


def resident_bytes(record: UnitRecord) -> float:
    """Bytes per vector a unit keeps in memory before rescoring: what the index holds (its
    codes, or the float32 it was given when the pipeline only simulates a quantizer; its links
    and ids) or, if more, its serialized size (which adds codebooks, centroids, rotations and
    headers), plus what the pipeline keeps to encode queries, amortized over the base."""
    build, encode = record.build, record.encode
    n = max(int(record.dataset.n_base), 1)
    held = float(build.code_bytes_per_vector) + float(build.graph_bytes_per_vector)
    index = max(held, float(build.index_bytes) / n)
    # records written before pipeline_model_bytes know only the quantizer's parameters
    model = (encode.pipeline_model_bytes if encode.pipeline_model_bytes is not None
             else encode.model_bytes)
    return index + float(model) / n


#: A setting's contention figures shown as columns (the rest stay in the record).
CONTENTION_COLUMNS = ("load_1m", "runnable_max", "over_share", "steal_share")


def _setting_row(row: dict, setting: SettingInfo, n_base: int = 1,
                 filtered: bool = False) -> dict:
    out = dict(row)
    if setting.filter is not None:  # the filter's label and typed parameters
        out["filter"] = setting.filter.get("label", "")
        out.update({f"filter.{name}": value
                    for name, value in setting.filter.get("params", {}).items()})
        out["filter_truth_s"] = setting.filter.get("truth_s")
    elif filtered:  # the unit has a filters: axis; this setting is its none
        out["filter"] = "none"
    for name, value in setting.search.items():
        if isinstance(value, dict):  # arrival: {rate, clients, ...} -> search.arrival.rate
            out.update({f"search.{name}.{key}": item for key, item in value.items()})
        else:
            out[f"search.{name}"] = value
    if setting.contention:  # measured while this setting was timed
        out.update({name: setting.contention.get(name) for name in CONTENTION_COLUMNS})
        out["cpu_per_wall"] = (setting.contention["cpu_s"] / setting.contention["wall_s"]
                               if setting.contention.get("wall_s") else None)
        out["contended"] = bool(out.get("contended")) or bool(setting.contention["contended"])
    out.update({f"rescore.{name}": value for name, value in setting.rescore.items()})
    if setting.step is not None:  # a runbook's search step
        out["step"], out["active"] = setting.step["step"], setting.step["active"]
        out["search_step"] = setting.step["search"] + 1  # same across runbook variants
    if setting.rescore_bytes_per_vector is not None:
        out["rescore_bytes_per_vector"] = setting.rescore_bytes_per_vector
        if RESIDENT in out:  # the rescoring copies are held in memory too, with their scales
            out[RESIDENT] += (setting.rescore_bytes_per_vector
                              + (setting.rescore_model_bytes or 0) / n_base)
    return out


def _settings_of(record: UnitRecord) -> list[SettingInfo]:
    """The recorded settings, or (for a failed unit) the ones the spec asked for."""
    if record.ok:
        return record.settings
    index = record.unit.spec.get("index", {})
    return [SettingInfo(search, rescoring)
            for search in index.get("search", []) or [{}]
            for rescoring in index.get("rescore", []) or [{}]]


def unit_rows(record: UnitRecord, raw: RawResults | None, reference, columns: list | None,
              with_specs: bool = False):
    """(table rows, per-query rows, unavailable columns) of one record; metrics are NaN where
    the raw results cannot give them (the reason is returned per column). ``with_specs`` adds
    ``_spec``: the unit's spec with the row's own search and rescoring settings."""
    from vecbench.evaluate import metrics

    row = base_row(record)
    rows, per_query, unavailable = [], [], {}
    n_base = max(int(record.dataset.n_base or 1) if record.dataset else 1, 1)
    filtered = "filters" in record.unit.spec
    for place, setting in enumerate(_settings_of(record)):
        out = _setting_row(row, setting, n_base, filtered)
        if with_specs:
            spec = dict(record.unit.spec, search=setting.search, row_rescore=setting.rescore)
            out["_spec"] = json.dumps(spec, default=str)
        if record.ok:
            evaluation = _setting(setting, raw.searches[place], raw, reference, n_base)
            wanted = columns or metrics.default_columns(
                record.unit.labels["k"], reference.judgments is not None, ran_load(record))
            if filtered:
                wanted = list(dict.fromkeys(
                    wanted + metrics.filter_columns(record.unit.labels["k"])))
            if raw.runbook is not None:  # the step metrics, where the rows are a runbook's
                more = [c.format(k=record.unit.labels["k"]) for c in steps.COLUMNS]
                wanted = list(dict.fromkeys([*wanted, *more]))
            values = {}
            for column in wanted:
                parsed = metrics.parse_column(column)
                try:
                    out[column], values[column] = metrics.evaluate(evaluation, parsed)
                except metrics.MetricUnavailable as exc:
                    out[column] = float("nan")
                    unavailable.setdefault(column, str(exc))
            per_query.append({name: v for name, v in values.items() if v is not None})
        rows.append(out)
    return rows, per_query, unavailable


def _setting(setting: SettingInfo, search: RawSearch, raw: RawResults, reference,
             n_base: int = 0):
    from vecbench.evaluate.metrics import Setting

    ids = {depth: _padded(search.ids[depth], depth) for depth in setting.depths}
    filtered = None
    if setting.filter is not None:  # its filter and exact answers, from the raw file
        filtered = _filter_view(raw.filters[setting.filter["answers"]])
    index_truth = raw.index_truth if raw.index_truth is not None else reference.truth_ids
    if setting.step is not None:  # a runbook step: scored against its active set's exact kNN
        place = setting.step["search"]
        reference = dataclasses.replace(
            reference, truth_ids=raw.runbook["truth_ids"][place],
            truth_distances=raw.runbook["truth_distances"][place],
            n_base=setting.step["active"])
        index_truth = None
    return Setting(ids=ids, reference=reference, true_distances=search.true_distances,
                   index_truth=index_truth,
                   batch_seconds=search.batch_seconds, latency_seconds=search.latency_seconds,
                   client_wall_seconds=search.client_wall_seconds, filtered=filtered,
                   n_base=n_base, runbook=raw.runbook, step=setting.step,
                   arrival=search.arrival, arrival_spec=setting.search.get("arrival"))


def ran_load(record: UnitRecord) -> bool:
    """The unit ran an open-loop load in some setting (its rows get the load columns)."""
    return any("arrival" in setting.search for setting in record.settings)


@dataclass
class FilterView:
    """A filter and its exact answers as the metrics read them."""

    row_filter: object
    truth_ids: object
    n_matching: object
    kth: object


def _filter_view(answers) -> FilterView:
    from vecbench.compute.filters import RowFilter

    arrays = answers.arrays
    return FilterView(RowFilter.from_arrays(arrays, ""), arrays["truth_ids"],
                      arrays["n_matching"], arrays["kth"])


def _padded(ids, depth: int):
    """Ids of a search at ``depth`` over a base of fewer rows, padded with -1 (no result) to
    ``depth`` columns: a 60-document corpus answers 60 of the 100 judged_recall@100 asks for."""
    import numpy as np

    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] >= depth:
        return ids
    return np.pad(ids, ((0, 0), (0, depth - ids.shape[1])), constant_values=-1)


@dataclass
class Tables:
    frame: object                 # the results table (pandas)
    per_query: object             # one row per (row, query): the per-query metric values
    notes: list[str]


def outcome_rows(outcome, columns: list[str] | None = None) -> list[dict]:
    """The table rows of a unit's outcome still in memory (the pytest plugin's path)."""
    return unit_rows(outcome.record, outcome.raw, outcome.reference, columns)[0]


def build_tables(results: str | Path, columns: list[str] | None = None,
                 include_all: bool = False, with_specs: bool = False) -> Tables:
    """The results table and the per-query table of a results folder."""
    import pandas as pd

    from vecbench.evaluate import metrics

    points = [column for column in columns or [] if operating.is_point(column)]
    for point in points:
        try:
            operating.parse(point)
        except ConfigError as exc:
            raise exc.within("--metrics") from None
    columns = [column for column in columns or [] if column not in points]
    if columns:
        for column in columns:
            try:
                parsed = metrics.parse_metric(column)
            except ConfigError as exc:
                raise exc.within("--metrics") from None
            if parsed.metric.compute is None:
                computable = ", ".join(n for n, m in metrics.METRICS.items() if m.compute)
                raise ConfigError(f"{column!r} is recorded at run time, not computed from raw "
                                  f"results; expected one of: {computable}", "--metrics")
        columns = list(dict.fromkeys(columns))
    selection = records.select(results, include_all)
    # how the last run matched these units to their data: "full" (hashed) or "size+mtime"
    hashing, current = records.manifest_hashing(results), records.read_manifest(results)
    references: dict = {}
    rows, per_query, unavailable = [], [], {}
    for record in selection.records:
        try:
            raw = reference = None
            if record.ok:
                raw = records.load_raw(results, record)
                name = record.reference.file
                if name not in references:
                    references[name] = records.load_reference(results, record)
                reference = references[name]
            wanted = None
            if columns:
                k = record.unit.labels["k"]
                wanted = metrics.default_columns(k, reference is not None and
                                                 reference.judgments is not None,
                                                 record.ok and ran_load(record)) + columns
                wanted = list(dict.fromkeys(wanted))
            unit_table, unit_per_query, missing = unit_rows(record, raw, reference, wanted,
                                                            with_specs)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            # valid JSON of the right top-level shape, wrong inside (edited or foreign):
            # reported and left out like any other incomplete record
            selection.unreadable.append(
                f"{records.record_path(results, record.key)}: not a complete vecbench run "
                f"record ({type(exc).__name__}: {exc}); rerun the unit with `vecbench run`")
            continue
        for row in unit_table:
            row["data_hashing"] = hashing if current and record.key in current else None
        for column, why in missing.items():
            unavailable.setdefault(column, [0, why])[0] += len(unit_table)
        for i, values in enumerate(unit_per_query):
            row_id = len(rows) + i
            for name, array in values.items():
                per_query.append((row_id, name, array))
        rows.extend(unit_table)
    frame = pd.DataFrame(rows)
    notes = selection.notes()
    for column, (count, why) in unavailable.items():
        if columns and column in columns:
            notes.append(f"{column}: not computable for {count} rows ({why})")
    if frame.empty:
        return Tables(frame, pd.DataFrame(), notes)
    frame = add_repeat_intervals(operating.add_group_columns(
        steps.add_step_means(add_derived_columns(frame)), points))
    frame = _typed(frame, _int_columns(rows))
    frame = frame[_ordered_columns(frame)]
    return Tables(frame, _per_query_frame(frame, per_query), notes)


def _per_query_frame(frame, per_query: list):
    """Long per-query table: the configuration columns of each row, query, and one column per
    per-query metric."""
    import numpy as np
    import pandas as pd

    if not per_query:
        return pd.DataFrame()
    by_row: dict = {}
    for row_id, name, values in per_query:
        by_row.setdefault(row_id, {})[name] = values
    parts = []
    keys = config_columns(frame) + ["experiment"]
    for row_id, values in by_row.items():
        n = len(next(iter(values.values())))
        part = {column: [frame.iloc[row_id][column]] * n for column in keys}
        part["row"] = np.full(n, row_id)
        part["query"] = np.arange(n)
        part.update({name: np.asarray(v, dtype=np.float64) for name, v in values.items()})
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def _int_columns(rows: list[dict]) -> list[str]:
    """Columns whose every given value is an integer (JSON keeps ints as ints)."""
    kinds: dict = {}
    for row in rows:
        for column, value in row.items():
            if value is not None and not (isinstance(value, float) and value != value):
                kinds.setdefault(column, set()).add(
                    "int" if isinstance(value, int) and not isinstance(value, bool) else "other")
    return [column for column, seen in kinds.items() if seen == {"int"}]


def _typed(frame, int_columns: list[str]):
    """Integer columns stay integers (nullable Int64 where some rows lack them); a column of
    mixed text and numbers (nlist beside a factory string) becomes text, as parquet needs."""
    for column in int_columns:
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column].dropna()}
            if len(kinds) > 1 and str in kinds:
                frame[column] = frame[column].map(lambda v: v if v is None or v != v
                                                  else str(v))
    return frame


def add_derived_columns(frame):
    """``pipeline_kind``: the pipeline without parameters ("pca|float8"), to group by method;
    ``total_bytes_per_vector``: the index's bytes plus those of a rescoring copy, if any."""
    if "pipeline" in frame:
        frame["pipeline_kind"] = frame["pipeline"].astype(str).str.replace(
            r"\([^)]*\)", "", regex=True)
    if "bytes_per_vector" in frame:
        rescore = frame.get("rescore_bytes_per_vector")
        frame["total_bytes_per_vector"] = frame["bytes_per_vector"] + (
            0 if rescore is None else rescore.fillna(0))
    return frame


def add_repeat_intervals(frame):
    """Add ``<metric>_mean``, ``_ci95_low``, ``_ci95_high`` over the repeats of a configuration.

    The interval is Student's t over the repeats' means (each repeat is an independent build);
    configurations with a single repeat get the mean and no interval (NaN).
    """
    import numpy as np
    from scipy.special import stdtrit  # Student's t quantile; scipy.stats costs 1-2 s to import

    keys = config_columns(frame, repeat=False)
    ok = frame["status"] == "ok" if "status" in frame else None
    for k in sorted(set(frame["k"].dropna().astype(int))):
        for template in REPEATED_METRICS:
            column = template.format(k=k)
            if column not in frame:
                continue
            part = frame if ok is None else frame[ok]
            grouped = part.groupby(keys, sort=False, dropna=False)[column]
            mean, std, count = (grouped.transform(f) for f in ("mean", "std", "count"))
            half = stdtrit(np.maximum(count - 1, 1), 0.975) * std / np.sqrt(count)
            half = half.where(count > 1)
            frame[f"{column}_mean"] = mean
            frame[f"{column}_ci95_low"] = mean - half
            frame[f"{column}_ci95_high"] = mean + half
    return frame


def _ordered_columns(frame) -> list[str]:
    k = int(frame["k"].dropna().iloc[0]) if "k" in frame and frame["k"].notna().any() else 10
    builds = sorted(c for c in frame.columns if c.startswith(("build.", "pipeline.")))
    searches = sorted(c for c in frame.columns if c.startswith(("search.", "rescore.")))
    from vecbench.evaluate.metrics import default_columns

    wanted = (FIRST_COLUMNS + builds + searches + MIDDLE_COLUMNS + default_columns(k, True)
              + RUN_COLUMNS)
    present = [c for c in wanted if c in frame.columns]
    return present + [c for c in frame.columns if c not in present]


# ---------------------------------------------------------------------------------------------
# Files

def write_table(frame, path: Path) -> Path:
    """CSV or parquet, atomically: a killed collect never leaves a truncated table."""
    if path.suffix == ".csv":
        atomic.write_text(path, frame.to_csv(index=False))
    else:
        atomic.write_with(path, lambda handle: frame.to_parquet(handle, index=False))
    return path


def collect(results: str | Path, columns: list[str] | None = None, include_all: bool = False,
            log: Callable[[str], None] = lambda line: None) -> tuple[Path, Path, int]:
    """Write ``results.csv``, ``results.parquet`` and ``per_query.parquet``."""
    tables = build_tables(results, columns, include_all)
    clean_temporaries(results)   # tables of an interrupted collect
    for note in tables.notes:
        log(note)
    results = Path(results)
    csv_path = write_table(tables.frame, results / "results.csv")
    parquet_path = write_table(tables.frame, results / "results.parquet")
    if len(tables.per_query):
        write_table(tables.per_query, results / "per_query.parquet")
    return csv_path, parquet_path, len(tables.frame)


def table(source: str | Path, columns: list[str] | None = None):
    """A results folder (its run records), a results.csv or a results.parquet -> DataFrame."""
    path = Path(source)
    if path.is_dir():
        if not records.runs_dir(path).is_dir() and (path / "results.parquet").is_file():
            return read_table(path / "results.parquet")
        return build_tables(path, columns).frame
    if not path.is_file():
        raise DataError(f"{source}: no such results folder or file (expected a results folder, "
                        "results.csv or results.parquet)")
    return read_table(path)


def read_table(path: Path):
    import pandas as pd

    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unknown table format {path.suffix!r} (expected .csv, "
                            ".parquet or a results folder)")
    except DataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many kinds for a bad file
        raise DataError(f"{path}: not a readable results table ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); expected a table "
                        "written by `vecbench collect`") from None
    if "dataset" not in frame.columns:
        raise DataError(f"{path}: not a vecbench results table (no 'dataset' column)")
    _check_numeric(frame, path)
    return frame


#: Columns that hold numbers in every table collect writes, besides the metric columns.
NUMERIC_COLUMNS = ("k", "repeat", "build_s", "fit_s", "encode_s", "bytes_per_vector",
                   "graph_bytes_per_vector", "total_bytes_per_vector", "index_bytes",
                   "resident_bytes_per_vector", "compression_ratio")
#: The memory a configuration needs, and what the codes alone take (tables before it).
RESIDENT, CODES = "resident_bytes_per_vector", "bytes_per_vector"


def memory_column(frame) -> str:
    """The column that says what a configuration costs in memory: ``resident_bytes_per_vector``
    where the table has it (every copy, link and parameter counted), else (a table collected
    before that column existed) ``bytes_per_vector``, the codes alone."""
    if RESIDENT in frame.columns and frame[RESIDENT].notna().any():
        return RESIDENT
    return CODES


def memory_label(column: str) -> str:
    """An axis or table label that says what a memory column counts."""
    return {RESIDENT: "resident bytes per vector (codes + links + copies + parameters)",
            CODES: "bytes per vector (codes only)"}.get(column, column)


def _check_numeric(frame, path: Path) -> None:
    """A metric or size column with text in it (an edited or foreign table) is a one-line
    DataError, not rows compared as strings (which pass every rule)."""
    import pandas as pd

    from vecbench.evaluate.metrics import parse_column

    for column in frame.columns:
        if not (column in NUMERIC_COLUMNS or parse_column(str(column)) is not None):
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna() & values.notna() & (values.astype(str) != "")]
        if len(bad):
            raise DataError(f"{path}: column {column!r} has a value that is not a number "
                            f"({bad.iloc[0]!r} in row {bad.index[0]}); expected numbers, as "
                            "`vecbench collect` writes them")
        frame[column] = numbers


def per_query(source: str | Path):
    """(results table, per-query table) of a results folder, or of a folder holding the two
    parquet files (a committed study)."""
    path = Path(source)
    if path.is_dir() and records.runs_dir(path).is_dir():
        tables = build_tables(path)
        return tables.frame, tables.per_query
    table_path, per_query_path = path / "results.parquet", path / "per_query.parquet"
    if not per_query_path.is_file():
        raise DataError(f"{source}: no run records or per_query.parquet here (expected a "
                        "results folder written by `vecbench run` or `vecbench collect`)")
    import pandas as pd

    try:
        return read_table(table_path), pd.read_parquet(per_query_path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{per_query_path}: not a readable per-query table ({exc})") from None




def query_lid_table(source: str | Path):
    """The queries' pointwise LID of each dataset in a results folder (``dataset``, ``lid``,
    ``of``), from the reference answers its run records name."""
    import pandas as pd

    from vecbench.compute.lid import DEFAULT_K

    frames, seen = [], set()
    for record in records.select(source, include_all=True).records:
        if not record.ok or record.dataset.name in seen:
            continue
        seen.add(record.dataset.name)
        values = records.load_reference(source, record).query_lid
        about = f"queries, MLE k={min(DEFAULT_K, record.dataset.n_base)}"
        frames.append(pd.DataFrame({"dataset": record.dataset.name, "lid": values,
                                    "of": about}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
