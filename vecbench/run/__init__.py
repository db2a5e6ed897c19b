"""Layer 6: running units: the experiment spec, the unit's stages, workers, executors, runner,
run records and work shared between units. Imports core, compute, datasets, transforms, indexes."""
