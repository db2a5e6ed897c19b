#!/bin/sh
# Prints the seed-axis tables of results/rag_storage/README.md (issue 29) from the committed
# results/rag_storage_seeds tables (experiments/rag_storage/seeds.yaml, five fit seeds):
#   sh experiments/rag_storage/seeds.sh > /tmp/seeds.md
# Each trained code or randomized reduction, exact search, against float32 exact search; the
# interval resamples the five fits, then the queries ("queries only": the fit-averaged
# differences over the queries alone). The second table of each dataset is the first fit seed
# alone, as the committed study ran it. Verdicts: Benjamini-Hochberg across each table's rows
# (FDR 0.05); "equivalent" is TOST within +-1 nDCG point.
set -e
V=${VECBENCH:-.venv/bin/vecbench}
R=${SEEDS_DIR:-results/rag_storage_seeds}
BASE="pipeline == 'float32' and index == 'flat'"
COMMON="--metric ndcg@10 --margin 1 --show recall@10 --sort=-bytes_per_vector --drop dataset,baseline,queries,quantization"
for d in scifact-minilm-l6 scifact-sentences-minilm-l6 cranfield-minilm-l6; do
  echo "### $d: nDCG@10 against float32, 5 fit seeds"
  echo
  $V paired $R --baseline "$BASE" --where "dataset == '$d'" $COMMON
  echo
  echo "### $d: the same with the first fit seed only (repeat 0): intervals over queries alone"
  echo
  $V paired $R --baseline "$BASE" --where "dataset == '$d' and repeat == 0" $COMMON
  echo
done
