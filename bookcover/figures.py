"""Figures: every PNG of a run is drawn on the file-only Agg backend and saved the same way."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: str | Path) -> None:
    """Lay out, write and close a figure: every PNG of a run is saved the same way."""
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
