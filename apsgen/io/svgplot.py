"""Small inline-SVG bar charts for the HTML report: no plotting library, no CDN, no network."""

from __future__ import annotations

from html import escape

WIDTH = 460
HEIGHT = 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 28, 48


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        top = step * 5
        if v <= top:
            return float(top)
    return float(v)


def bar_chart(title: str, labels: list[str], values: list[float], *, color: str = "#4c78a8",
              colors: list[str] | None = None) -> str:
    """A vertical bar chart as one <svg class="plot"> element."""
    n = max(1, len(values))
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    top = _nice_max(max(values, default=0))
    slot = inner_w / n
    bar_w = max(2.0, slot * 0.8)
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" class="plot-title">{escape(title)}</text>',
    ]
    for i in range(6):  # gridlines and y ticks
        v = top * i / 5
        y = PAD_TOP + inner_h - inner_h * i / 5
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        label = f"{v:.0f}" if top >= 5 else f"{v:.1f}"
        parts.append(f'<text x="{PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{label}</text>')
    for i, (lab, v) in enumerate(zip(labels, values)):
        h = inner_h * (v / top) if top else 0
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        y = PAD_TOP + inner_h - h
        fill = colors[i] if colors else color
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{fill}">'
            f"<title>{escape(lab)}: {v:g}</title></rect>"
        )
        # Label every bar when few, else every other one, so ticks never overlap.
        if n <= 12 or i % 2 == 0:
            cx = x + bar_w / 2
            ty = PAD_TOP + inner_h + 14
            parts.append(
                f'<text x="{cx:.1f}" y="{ty:.1f}" text-anchor="end" transform="rotate(-30 {cx:.1f} {ty:.1f})" '
                f'class="tick">{escape(lab)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def histogram(values: list[float], bins: int) -> tuple[list[str], list[int]]:
    """Integer-friendly histogram of non-negative values: (bin labels, counts)."""
    if not values:
        return [], []
    lo, hi = min(values), max(values)
    if hi - lo < bins and all(float(v).is_integer() for v in values):
        labels = [str(int(v)) for v in range(int(lo), int(hi) + 1)]
        counts = [0] * len(labels)
        for v in values:
            counts[int(v) - int(lo)] += 1
        return labels, counts
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    labels = [f"{lo + i * width:.0f}" for i in range(bins)]
    return labels, counts
