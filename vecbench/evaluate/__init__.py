"""Layer 7: metrics over raw results, results tables, comparisons, paired statistics, fronts."""
