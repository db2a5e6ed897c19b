#!/bin/sh
# Prints the tables of results/nn_preserving/README.md from the committed results and per-query tables:
#   sh experiments/nn_preserving/tables.sh > /tmp/tables.md
# Every reduction is paired with PCA at the same size (--within dataset,bytes_per_vector):
# per-query differences, percentile bootstrap 95% intervals over the queries.
set -e
V=${VECBENCH:-.venv/bin/vecbench}
R=results/nn_preserving
REDUCED="bytes_per_vector < 1536 and bytes_per_vector != 3136"  # not the unreduced 384-d / 784-d
COMMON="--within dataset,bytes_per_vector --drop dataset,index,baseline"
for d in scifact-sentences-minilm-l6 mnist-test cisi-minilm-l6; do
  echo "### $d: neighbour preservation (recall@10 of exact search in the reduced space), against PCA"
  echo
  $V paired $R --baseline "pipeline_kind == 'pca' and index == 'flat'" --metric recall@10 \
    --where "dataset == '$d' and index == 'flat' and $REDUCED" \
    --show trustworthiness@10,fit_s --sort bytes_per_vector,-recall@10 $COMMON
  echo
  if [ "$d" != mnist-test ]; then
    echo "### $d: nDCG@10 of exact search in the reduced space, against PCA"
    echo
    $V paired $R --baseline "pipeline_kind == 'pca' and index == 'flat'" --metric ndcg@10 \
      --where "dataset == '$d' and index == 'flat' and $REDUCED" $COMMON --sort bytes_per_vector,-ndcg@10
    echo
  fi
  echo "### $d: end to end, hnswlib (M 16, ef_construction 200, ef 64) over the reduced vectors, against PCA + hnswlib"
  echo
  $V paired $R --baseline "pipeline_kind == 'pca' and index == 'hnswlib'" --metric recall@10 \
    --where "dataset == '$d' and index == 'hnswlib' and $REDUCED" --show qps --sort bytes_per_vector,-recall@10 $COMMON
  echo
  echo "### $d: no reduction (float32), exact and hnswlib"
  echo
  $V paired $R --baseline "index == 'flat'" --metric recall@10 \
    --where "dataset == '$d' and not ($REDUCED)" --drop dataset,baseline
  echo
done
