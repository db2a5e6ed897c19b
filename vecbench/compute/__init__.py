"""Layer 2: pure kernels over arrays: exact kNN, LID estimators, relevance and recall kernels,
insertion orderings. Imports only :mod:`vecbench.core`."""
