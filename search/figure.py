"""A picture of a derived architecture, like the ProxylessNAS paper's figure: one bar per layer from
input to output, its height the expansion ratio, its colour the kernel size, labelled `MB6 5x5`
(each block kind's glyph, profiler/space/kinds/).
Written as SVG by hand (no plotting library is needed for boxes and text)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from profiler.files import write_text
from profiler.space.kinds import KINDS
from profiler.space.spaces import SearchSpace

KERNEL_COLOURS = {3: "#9fc5e8", 5: "#f6b26b", 7: "#e06666", 9: "#8e7cc3", 11: "#6aa84f"}
FIXED_COLOUR = "#d9d9d9"
BAR_W, GAP, UNIT_H, BASE = 26, 6, 20, 160


def _bar(x: float, height: float, colour: str, label: str) -> str:
    height = round(max(height, 6 * len(label) + 8), 1)  # tall enough for its rotated label
    y = BASE - height
    cx, cy = x + BAR_W / 2, round(BASE - height / 2, 1)
    return (f'<rect x="{x}" y="{y}" width="{BAR_W}" height="{height}" rx="3" fill="{colour}" '
            f'stroke="#444" stroke-width="0.8"/>'
            f'<text x="{cx}" y="{cy}" transform="rotate(-90 {cx} {cy})" text-anchor="middle" '
            f'dominant-baseline="central" font-size="10">{escape(label)}</text>')


def architecture_svg(space: SearchSpace, choices: list[str], title: str = "") -> str:
    glyphs = [KINDS[s.kind].glyph(s) for s in space.network(choices)]
    items = [(None, 0, "skip") if g is None else
             (FIXED_COLOUR if g.kernel is None else KERNEL_COLOURS.get(g.kernel, "#999"), g.height, g.label)
             for g in glyphs]
    width = 20 + len(items) * (BAR_W + GAP) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{BASE + 60}" '
             f'font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="18" font-size="13">{escape(title)}</text>',
             f'<line x1="10" y1="{BASE + 1}" x2="{width - 10}" y2="{BASE + 1}" stroke="#888"/>']
    x = 20
    for colour, units, label in items:
        if colour is None:  # a skipped layer: its input goes straight through
            parts.append(f'<text x="{x + BAR_W / 2}" y="{BASE - 6}" text-anchor="middle" '
                         f'font-size="9" fill="#888">skip</text>')
        else:
            parts.append(_bar(x, units * UNIT_H * 0.8, colour, label))
        x += BAR_W + GAP
    legend_y, lx = BASE + 30, 20
    for kernel in sorted({g.kernel for g in glyphs if g is not None and g.kernel is not None}):
        parts.append(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" '
                     f'fill="{KERNEL_COLOURS.get(kernel, "#999")}" stroke="#444" stroke-width="0.8"/>'
                     f'<text x="{lx + 16}" y="{legend_y}" font-size="11">{kernel}x{kernel}</text>')
        lx += 60
    parts.append(f'<text x="{lx}" y="{legend_y}" font-size="11">bar height: expansion ratio</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_architecture_svg(path: Path, space: SearchSpace, choices: list[str], title: str = "") -> None:
    write_text(path, architecture_svg(space, choices, title))
