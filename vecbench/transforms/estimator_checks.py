"""scikit-learn's ``check_estimator`` on vecbench's transforms: parameters and known failures.

The one place that says which of scikit-learn's estimator checks a registered transform does
not pass, and why. ``tests/conformance/test_transform_conformance.py`` runs every check on every registered
transform twice: built with its defaults (what ``check_estimator(MPAD())`` runs for a user) and
with :data:`CHECK_PARAMS`. Both fail the same checks, listed here: a listed check must fail (so
the list cannot go stale), except those in :data:`ORDER_DEPENDENT` and :data:`UNSTABLE`, which
may; every other check must pass; no transform lists more than :data:`MAX_FAILED_CHECKS`.

Defaults fit any input because ``n_components`` defaults to a fraction of the input dimension
(MPAD's used to be 64 and UMAP's 16: an integer above a tiny array's 1-10 features, so 21-22
checks failed on it). An explicit integer above the input dimension still raises ValueError
(ConfigError) naming ``n_features``, as scikit-learn's PCA does, so a grid over dimensions never
records a clipped unit. A neighbourhood larger than a tiny fit sample (UMAP's ``n_neighbors``,
MPAD's ``k``) is truncated with a warning, umap-learn's own rule.

:data:`CHECK_PARAMS` are small settings for scikit-learn's tiny test arrays (a few to a few
dozen rows, one to ten features): fractions for ``n_components`` so one feature still works,
and small neighbourhoods and budgets so each fit takes milliseconds. UMAP keeps 5 neighbours:
with 3, the tiny arrays' kNN graph falls apart into components that umap-learn lays out
differently from one fit to the next even with a seed (``check_fit_idempotent`` then fails in
10 of 12 tries; with 5, in none).
"""

from __future__ import annotations

#: Constructor parameters of the instance each check runs on, by registered name.
CHECK_PARAMS: dict[str, dict] = {
    "pca": {"n_components": 0.5},
    "random_projection": {"n_components": 0.5},
    "truncate": {"n_components": 0.5},
    "umap": {"n_components": 0.5, "n_neighbors": 5, "fit_size": 100},
    "kernel_pca": {"n_components": 0.5, "kernel": "rbf", "fit_size": 100},
    "autoencoder": {"n_components": 0.5, "hidden": [8], "epochs": 5},
    "mpad": {"n_components": 0.5, "k": 3, "fit_size": 100, "n_anchors": 20, "n_negatives": 4,
             "negative_rank": 10, "max_iter": 5},
    "mpad_axiswise": {"n_components": 0.5, "fit_size": 100, "pairs_per_point": 5,
                      "max_iter": 5},
    "float16": {},
    "bfloat16": {},
    "float8": {"format": "e4m3", "scale": "per_dimension"},
    "int8": {"symmetric": False, "granularity": "per_dimension"},
    "int4": {"symmetric": True, "granularity": "global"},
    "binary": {},
}

_ORDER = ("float32 matrix products: a row's last bit depends on where BLAS's blocking puts it "
          "(1 ulp, about 1e-7 relative), beyond the check's rtol of 1e-7; the output is float32 "
          "by design (half the memory of the float64 the check would need)")

#: At most this many listed checks per transform (reasons from the environment aside).
MAX_FAILED_CHECKS = 3

#: Checks that may fail or pass from run to run (an output's last bit depends on row order).
ORDER_DEPENDENT = frozenset({"check_methods_sample_order_invariance"})

_BATCH = ("UMAP's out-of-sample transform optimizes the new points' coordinates together, with "
          "negative sampling seeded per call: a point's output depends on the rest of the batch "
          "(vecbench transforms base and queries in one call each, so both are reproducible)")

_REFIT = ("umap-learn's fit is not reproducible within one process even with random_state: two "
          "fits of the same data give different embeddings (seen with umap-learn 0.5.12, numba "
          "0.68), so a refit's transform differs; across processes a seeded fit repeats")

#: (registered name, check) pairs that may fail or pass from run to run, for the reason given.
UNSTABLE = frozenset({("umap", "check_fit_idempotent")})

#: {registered name: {check name: why it fails}}; a name absent here passes every check.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    **{name: {"check_methods_sample_order_invariance": _ORDER}
       for name in ("pca", "random_projection", "kernel_pca", "autoencoder", "mpad",
                    "mpad_axiswise")},
    "umap": {"check_methods_sample_order_invariance": _BATCH,
             "check_methods_subset_invariance": _BATCH, "check_fit_idempotent": _REFIT},
}


_BF16_NUMPY1 = ("numpy < 2's isclose promotes by value and finds no common type for bfloat16 "
                "and a Python float, so scikit-learn's comparison of two outputs raises before "
                "comparing (numpy >= 2 promotes by type: these checks pass there)")


def _numpy_major() -> int:
    import numpy
    return int(numpy.__version__.split(".")[0])


#: Reasons that belong to the installed libraries, not to a transform (not counted against
#: :data:`MAX_FAILED_CHECKS`).
ENVIRONMENT_REASONS = frozenset({_BF16_NUMPY1})

if _numpy_major() < 2:
    EXPECTED_FAILED_CHECKS["bfloat16"] = dict.fromkeys(
        ("check_pipeline_consistency", "check_estimators_pickle",
         "check_transformer_data_not_an_array", "check_transformer_general",
         "check_methods_sample_order_invariance", "check_methods_subset_invariance",
         "check_fit_idempotent"), _BF16_NUMPY1)


def expected_failed_checks(estimator) -> dict[str, str]:
    """``{check name: reason}`` for ``estimator`` (the signature scikit-learn >= 1.6 takes)."""
    return dict(EXPECTED_FAILED_CHECKS.get(getattr(estimator, "name", ""), {}))
