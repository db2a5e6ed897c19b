#!/bin/sh
# Prints the tables of results/engines/README.md from the committed results and per-query tables:
#   sh experiments/engines/tables.sh > /tmp/tables.md
set -e
V=${VECBENCH:-.venv/bin/vecbench}
P=${PYTHON:-.venv/bin/python}
R=results/engines
echo "### every row: recall@10, nDCG@10, QPS at 1 and 4 clients, build, bytes"
echo
$P - "$R" <<'PY'
import sys
import pandas as pd
d = pd.read_csv(f"{sys.argv[1]}/results.csv")
d["config"] = (d["index"] + " " + d["pipeline"] + " " + d["build.type"].fillna("") + " "
               + d["build.method"].fillna("") + d["build.index_type"].fillna("")).str.strip()
d["param"] = ""
for col in ("search.ef", "search.ef_search", "search.search_ef", "search.probes", "search.nprobes"):
    d.loc[d[col].notna(), "param"] = col.split(".")[1] + "=" + d[col].dropna().astype(int).astype(str)
keys = ["config", "param"]
one = d[d["search.clients"] == 1].set_index(keys)
four = d[d["search.clients"] == 4].set_index(keys)
t = one[["recall@10", "ndcg@10", "qps", "p99_ms"]].rename(columns={"qps": "qps_1", "p99_ms": "p99_ms_1"})
t["qps_4"] = four["qps"]
t["p99_ms_4"] = four["p99_ms"]
t["build_s"] = one["build_s"]
t["load_s"] = one["details.load_s"]
t["index_s"] = one["details.index_s"]
t["bytes_per_vector"] = one["bytes_per_vector"]
t["index_MB"] = one["index_bytes"] / 1e6
t = t.reset_index().round({"recall@10": 4, "ndcg@10": 4, "qps_1": 0, "qps_4": 0, "p99_ms_1": 1,
                           "p99_ms_4": 1, "build_s": 1, "load_s": 2, "index_s": 1,
                           "index_MB": 1})
print("| " + " | ".join(t.columns) + " |")
print("|" + "---|" * len(t.columns))
for row in t.itertuples(index=False):  # no tabulate dependency: a plain markdown table
    print("| " + " | ".join("" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v)
                            for v in row) + " |")
print()
for col in ("details.server", "details.server_version", "details.pgvector_version",
            "details.psycopg_version", "details.lancedb_version", "details.chromadb_version"):
    print(f"- {col}: {d[col].dropna().unique().tolist()}")
PY
echo
for m in recall@10 ndcg@10; do
  echo "### pgvector HNSW: halfvec against vector at the same ef_search (1 client), $m"
  echo
  $V paired $R --baseline "index == 'pgvector' and \`build.type\` == 'vector' and \`search.clients\` == 1" \
    --where "index == 'pgvector' and \`build.method\` == 'hnsw' and \`search.clients\` == 1" \
    --within dataset,search.ef_search --metric $m --show recall@10 \
    --drop dataset,queries,build.ef_construction,build.m,build.method,search.clients
  echo
done
