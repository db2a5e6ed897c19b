"""The parameters of the built-in transforms: one declaration per transform, read by
validation, `vecbench describe` and the generated docs, and importing nothing heavy.

``vecbench validate`` checks every pipeline step without data; importing the transform classes
for that would import scikit-learn (-> scipy.stats), ml_dtypes and numba: seconds, for a check
that is a few comparisons. Each built-in is registered with its :class:`Spec` from here
(``transforms.register(name, target, spec="...:NAME")``); the class declares the same tuple
(``params = checks.NAME.params``) and checks its parameters against it when fitted
(scikit-learn's convention), so there is one source.
"""

from __future__ import annotations

from vecbench.core.params import Param, Spec  # noqa: F401 (Spec: re-exported)

#: Parameters several reductions share, declared once.
NORMALIZE = Param("normalize", "bool", None, nullable=True,
                  doc="L2-normalize the output rows; null: the runner decides (true for cos)")
SEED = Param("seed", "int", 0, low=0, doc="random seed")

autoencoder = Spec("autoencoder", (
    Param("n_components", "dims", 0.5,
          doc="dimensions kept: an integer, or a fraction of the input dimension (0.5"
              " keeps half; 1.0 keeps all)"),
    Param("hidden", "ints", (512, 256), low=1,
          doc="sizes of the encoder's hidden layers (the decoder mirrors them)"),
    Param("activation", "choice", "tanh", choices=("relu", "tanh", "identity"),
          doc="activation of every hidden layer, the bottleneck included"),
    Param("epochs", "int", 20, low=1,
          doc="training epochs (MLPRegressor max_iter)"),
    Param("fit_size", "int", 10000, low=2,
          doc="fit on a seeded sample of at most this many train vectors"),
    NORMALIZE,
    SEED,
), list_params=("hidden",))

bfloat16 = Spec("bfloat16", ())

binary = Spec("binary", ())

float16 = Spec("float16", ())

float8 = Spec("float8", (
    Param("format", "choice", "e4m3", choices=("e4m3", "e5m2"),
          doc="E4M3 (max 448, more precision) or E5M2 (max 57344, more range)"),
    Param("scale", "choice", "none",
          choices=("none", "global", "per_dimension", "per_vector"),
          doc="none: the plain cast; global / per_dimension: multiply by format max /"
              " max|x| of the fit data (saturating beyond it); per_vector: by each "
              "vector's own max|x| (+4 bytes per vector)"),
))

int8 = Spec("int8", (
    Param("symmetric", "bool", False,
          doc="true: levels around 0 (scale = max|x| / (2^(bits-1) - 1)); false: "
              "min/max calibration over all 2^bits levels"),
    Param("granularity", "choice", "per_dimension", choices=("global", "per_dimension"),
          doc="one range per dimension, or one for all (codes then preserve distances"
              " up to scale)"),
))

int4 = Spec("int4", int8.params)  # the same calibration choices at 4 bits

kernel_pca = Spec("kernel_pca", (
    Param("n_components", "dims", 0.5,
          doc="dimensions kept: an integer, or a fraction of the input dimension (0.5"
              " keeps half; 1.0 keeps all)"),
    Param("kernel", "choice", "cosine", choices=("cosine", "rbf", "poly"),
          doc="kernel"),
    Param("fit_size", "int", 2000, low=2,
          doc="fit on a seeded sample of at most this many train vectors (memory "
              "grows with its square, time with its cube)"),
    NORMALIZE,
    SEED,
))

def _mpad_common(max_iter: int, tol: float, init: str) -> tuple[Param, ...]:
    """What both MPAD variants take; their defaults differ in the stop rule and the start."""
    return (
        Param("n_components", "dims", 0.5,
              doc="dimensions kept: an integer, or a fraction of the input dimension (0.5"
                  " keeps half; a fraction default fits any input, as PCA's does)"),
        Param("fit_size", "int", 10000, low=2, doc="rows sampled (seeded) to fit on"),
        Param("max_iter", "int", max_iter, low=1, doc="optimizer iterations"),
        Param("tol", "number", tol, low=0, high=1, doc="stop when the loss improves by less"),
        Param("init", "choice", init, choices=("pca", "random"), doc="starting projection"),
        Param("normalize", "bool", True, doc="fit on L2-normalized rows"),
        SEED,
    )


mpad = Spec("mpad", _mpad_common(max_iter=100, tol=0.05, init="pca") + (
    Param("k", "int", 10, low=1,
          doc="neighbours whose margin is kept"),
    Param("n_anchors", "int", 5000, low=1,
          doc="anchor points per fit"),
    Param("n_negatives", "int", 20, low=1,
          doc="non-neighbours per anchor"),
    Param("negative_rank", "int", 100, low=0,
          doc="negatives are drawn from beyond this neighbour rank"),
    Param("penalty", "number", 1.0, low=0, high=1e6,
          doc="weight of the soft orthogonality penalty"),
    Param("temperature", "number", 0.03, low=0, high=100, low_open=True,
          doc="softness of the margin, relative to the initial mean gap"),
    Param("optimizer", "choice", "lbfgs", choices=("lbfgs", "adam"),
          doc="scipy L-BFGS-B, or full-batch Adam"),
    Param("learning_rate", "number", 0.001, low=0, high=10, low_open=True,
          doc="Adam's step size"),
))

mpad_axiswise = Spec("mpad_axiswise", _mpad_common(max_iter=50, tol=1e-07, init="random") + (
    Param("b", "number", 1.0, low=0, high=100, low_open=True,
          doc="tail size, in percent of the sampled pairs"),
    Param("alpha", "number", 0.1, low=0, high=1e6,
          doc="weight of the orthogonality penalty"),
    Param("pairs_per_point", "int", 20, low=1,
          doc="sampled pairs per point"),
    Param("tail", "choice", "lower", choices=("lower", "upper"),
          doc="which tail of pairwise differences is maximized (lower: the paper)"),
))

pca = Spec("pca", (
    Param("n_components", "dims", 0.5,
          doc="dimensions kept: an integer, or a fraction of the input dimension (0.5"
              " keeps half; 1.0 keeps all)"),
    Param("whiten", "bool", False,
          doc="scale components to unit variance"),
    NORMALIZE,
    SEED,
))

random_projection = Spec("random_projection", (
    Param("kind", "choice", "gaussian", choices=("gaussian", "sparse"),
          doc="Gaussian, or sparse (Achlioptas / Li) random matrix"),
    Param("n_components", "dims", 0.5, choices=("auto",),
          doc="dimensions kept (integer or fraction of the input); auto: the Johnson-"
              "Lindenstrauss dimension for eps"),
    Param("eps", "number", 0.1, low=0, high=1, low_open=True, high_open=True,
          doc="distortion bound used by n_components: auto"),
    NORMALIZE,
    SEED,
))

truncate = Spec("truncate", (
    Param("n_components", "dims", 0.5,
          doc="the first dimensions kept (integer or fraction); Matryoshka embeddings"
              " put the most in front"),
    NORMALIZE,
))

umap = Spec("umap", (
    Param("n_components", "dims", 0.5,
          doc="output dimensions: an integer, or a fraction of the input dimension (a"
              " fraction default fits any input; 4000 MiniLM vectors, 384 dims: 37 s to fit"
              " 192 output dims, 23-26 s for 16)"),
    Param("n_neighbors", "int", 15, low=2,
          doc="UMAP's neighbourhood size"),
    Param("min_dist", "number", 0.1, low=0, high=1,
          doc="UMAP's minimum distance in the output"),
    Param("metric", "choice", "euclidean",
          choices=("euclidean", "cosine", "manhattan", "correlation"),
          doc="UMAP's input metric"),
    Param("fit_size", "int", 10000, low=2,
          doc="fit on a seeded sample of at most this many train vectors"),
    NORMALIZE,
    SEED,
))
