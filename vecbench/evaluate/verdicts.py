"""Verdicts with stated error rates for a table of paired comparisons.

- "better" / "worse": the two-sided bootstrap p-value of each comparison, adjusted with
  Benjamini-Hochberg across every comparison of the table (scipy.stats.false_discovery_control),
  is at most ``alpha``: the expected share of false "better/worse" calls is at most ``alpha``.
- "equivalent within ±m": two one-sided tests (TOST) against the stated margin ``m``, their
  p-value adjusted the same way, is at most ``alpha`` (the difference is shown to lie inside
  ±m, which an interval that merely contains 0 does not show).
- "inconclusive": neither. With no margin, nothing can be called equivalent.

A difference both significant and inside the margin reads "better, within ±m".
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.05


def adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    return false_discovery_control(np.clip(p, 0.0, 1.0), method="bh")


def verdicts(delta, p_diff, p_equiv=None, *, margin: float | None = None,
             alpha: float = ALPHA, higher_is_better: bool = True,
             scale: float = 1.0) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``(verdict per comparison, BH q of a difference, BH q of equivalence or None)``.

    ``delta``: the mean differences (configuration minus baseline); ``p_diff``: their two-sided
    p-values; ``p_equiv``: their TOST p-values against ``margin`` (same units as ``delta``);
    ``scale`` only formats the margin in the verdict (100: points)."""
    delta = np.asarray(delta, dtype=np.float64)
    q_diff = adjust(p_diff)
    q_equiv = adjust(p_equiv) if margin is not None and p_equiv is not None else None
    out = []
    for i, d in enumerate(delta):
        inside = q_equiv is not None and q_equiv[i] <= alpha
        within = f"within ±{margin * scale:g}" if margin is not None else ""
        if q_diff[i] <= alpha and d != 0:
            word = "better" if (d > 0) == higher_is_better else "worse"
            out.append(f"{word}, {within}" if inside else word)
        elif inside:
            out.append(f"equivalent {within}")
        else:
            out.append("inconclusive")
    return out, q_diff, q_equiv
