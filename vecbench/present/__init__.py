"""Layer 9: figures and reports (matplotlib is imported only when a figure is drawn)."""
