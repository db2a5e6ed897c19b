"""vecbench: benchmark compression pipelines and ANN indexes for embeddings.

Recall is measured against exact kNN of the original float32 vectors. Importing this package
is cheap: faiss, hnswlib and umap are imported only when a component that needs them runs.
"""

from vecbench.core.errors import ConfigError, DataError, VecbenchError
from vecbench.core.registry import datasets, indexes, orderings, transforms

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "VecbenchError", "datasets", "indexes", "orderings",
           "transforms", "__version__"]
