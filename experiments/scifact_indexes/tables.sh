#!/bin/sh
# Prints the table of results/scifact_indexes/README.md from the committed results and
# per-query tables: every index setting against exact search, query by query (nDCG@10 points,
# percentile bootstrap 95% intervals over the 188 claims).
#   sh experiments/scifact_indexes/tables.sh > /tmp/tables.md
set -e
V=${VECBENCH:-.venv/bin/vecbench}
$V paired results/scifact_indexes --baseline "index == 'flat'" --metric ndcg@10 \
  --show recall@10,judged_recall@100,qps --drop dataset,pipeline,baseline,bytes_per_vector \
  --sort index,build.M,search.ef,search.nprobe
