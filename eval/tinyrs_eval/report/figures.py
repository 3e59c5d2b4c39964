"""Score bar charts (matplotlib, embedded as base64 PNG) and PNG encoding of PIL thumbnails."""

from __future__ import annotations

import base64
import io
from typing import Any

from tinyrs_eval.report.runs import benchmark_keys
from tinyrs_eval.report.tables import score


def png_of_figure(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def png_of_image(image: Any, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def metrics_figure(runs: list[dict[str, Any]], mode: str) -> str | None:
    """Grouped bars of the headline score per benchmark and run. A score of 0 is drawn as a short dark tick on
    the axis with a '0' above it (a zero-height bar would be invisible); a missing score is written 'n/a'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = benchmark_keys(runs)
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.9 * len(keys) + 2)), 3.6))
    width = 0.8 / len(runs)
    x = np.arange(len(keys))
    for i, run in enumerate(runs):
        pos = x + i * width - 0.4 + width / 2
        vals = [score(run, k, mode) for k in keys]
        heights = [np.nan if v is None else 100 * v for v in vals]
        bars = ax.bar(pos, heights, width, label=run["_label"])
        colour = bars.patches[0].get_facecolor() if bars.patches else None
        for p, v in zip(pos, vals):
            if v is None:
                ax.text(p, 1, "n/a", ha="center", va="bottom", fontsize=6, rotation=90, color="grey")
            elif v == 0:
                ax.plot([p - width * 0.45, p + width * 0.45], [0, 0], color=colour, lw=4, solid_capstyle="butt",
                        clip_on=False)  # fmt: skip
                ax.text(p, 1, "0", ha="center", va="bottom", fontsize=6, color=colour)
    ax.set_xticks(x, keys, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"{mode} score (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{mode}: accuracy (cls, vqa, lhrs) / precision@0.5 (grounding)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return png_of_figure(fig)
