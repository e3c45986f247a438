"""The latency–accuracy trade-off of several searches: pareto.csv (one row a network) and pareto.png
(latency on x, accuracy on y), so a user sees the curve instead of reading numbers.

Networks are of three kinds: `searched` (one per target, joined by the curve), `random` (drawn at
the searched ones' latency, where a benchmark trains them) and `reference` (hand-designed ones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from profiler.files import atomic_path, write_text

KINDS = ("searched", "random", "reference")
STYLE = {"searched": dict(color="#c0392b", marker="o", ms=7, zorder=3),
         "random": dict(color="#7f8c8d", marker=".", ms=6, zorder=1),
         "reference": dict(color="#2471a3", marker="s", ms=7, zorder=2)}


@dataclass
class Point:
    kind: str  # one of KINDS
    name: str
    latency_ms: float  # predicted by the latency source the search used
    accuracy: float | None  # mean over seeds where several were trained; None: not measured
    accuracy_std: float | None = None
    target_ms: float | None = None
    folder: str = ""  # the search's folder, relative to the summary


def pareto_csv(points: list[Point]) -> str:
    cols = list(asdict(points[0])) if points else [f for f in Point.__dataclass_fields__]
    fmt = lambda v: "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join([",".join(cols)] + [",".join(fmt(asdict(p)[c]) for c in cols)
                                         for p in points]) + "\n"


def write_pareto(out: Path, points: list[Point], title: str,
                 accuracy_label: str = "test accuracy") -> dict[str, Path]:
    """Write out/pareto.csv and out/pareto.png; returns them by name."""
    files = {"pareto_csv": out / "pareto.csv", "pareto_png": out / "pareto.png"}
    write_text(files["pareto_csv"], pareto_csv(points))
    _figure(files["pareto_png"], points, title, accuracy_label)
    return files


def _figure(path: Path, points: list[Point], title: str, accuracy_label: str) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for kind in KINDS:
        shown = sorted((p for p in points if p.kind == kind and p.accuracy is not None),
                       key=lambda p: p.latency_ms)
        if not shown:
            continue
        ax.errorbar([p.latency_ms for p in shown], [p.accuracy for p in shown],
                    yerr=[p.accuracy_std or 0.0 for p in shown], capsize=2, elinewidth=1,
                    ls="-" if kind == "searched" else "none", label=kind, **STYLE[kind])
        if kind == "reference":
            for p in shown:
                ax.annotate(p.name, (p.latency_ms, p.accuracy), textcoords="offset points",
                            xytext=(5, -12), fontsize=8)
    for p in points:
        if p.kind == "searched" and p.target_ms is not None:
            ax.axvline(p.target_ms, color="#c0392b", lw=0.6, ls=":", zorder=0)
    ax.set(xlabel="latency (ms, predicted)", ylabel=accuracy_label, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
