#!/bin/sh
# Prints the tables of results/rag_storage/README.md from the committed results and per-query tables:
#   sh experiments/rag_storage/tables.sh > /tmp/tables.md
set -e
V=${VECBENCH:-.venv/bin/vecbench}
R=results/rag_storage
BASE="pipeline == 'float32' and index == 'flat'"
FLAT="index in ['flat', 'faiss_sq', 'faiss_binary_flat']"
COMMON="--metric ndcg@10 --relative --show recall@10 --sort=-bytes_per_vector --drop dataset,baseline,queries"
for d in scifact-minilm-l6 scifact-sentences-minilm-l6 cranfield-minilm-l6; do
  echo "### $d: exact search over the compressed vectors, against float32"
  echo
  $V paired $R --baseline "$BASE" --where "dataset == '$d' and $FLAT" $COMMON
  echo
  echo "### $d: hnswlib (M 16, ef_construction 200), against float32 exact search"
  echo
  $V paired $R --baseline "$BASE" \
    --where "dataset == '$d' and (index == 'hnswlib' or (index == 'flat' and pipeline == 'float32'))" $COMMON
  echo
done
echo "### PCA 50% + float8 e4m3 (8x) against int8 per-dimension (4x), exact search"
echo
$V paired $R --baseline "pipeline == 'int8(granularity=per_dimension,symmetric=False)' and index == 'flat'" \
  --where "index == 'flat' and pipeline in ['int8(granularity=per_dimension,symmetric=False)', 'pca(n_components=0.5)|float8(format=e4m3)', 'float8(format=e4m3,scale=none)']" \
  --metric ndcg@10 --relative --show recall@10 --drop baseline,queries,index,quantization
echo
# The budget winners are picked on held-out queries by experiments/rag_storage/budgets.py (the
# earlier `vecbench best` loop over 128/256/512 B picked and scored them on the same queries).
