"""The best score of a run over time, as a small standalone SVG (no plotting library: a step line, the
baseline, two axes). Every point of the curve carries its figures as data-* attributes, so the file can be
checked against the store it was drawn from.

    best_score_svg(points, baseline, title=..., metric=..., direction="min", minutes=12.5) -> str
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from ..evolution.history import Point

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 44, 52  # margins around the plotting area


def best_score_svg(
    points: list[Point],
    baseline: float | None,
    *,
    title: str,
    metric: str,
    direction: str,
    minutes: float,
) -> str:
    scores = [p.score for p in points] + ([baseline] if baseline is not None else [])
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    span_minutes = max([minutes, *(p.minutes for p in points), 1e-9])

    def x(value: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * value / span_minutes

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="15">{escape(title)}</text>',
        *_axes(x, y, low, high, span_minutes, metric, direction),
    ]
    if baseline is not None:
        parts.append(
            f'<line class="baseline" data-score="{baseline!r}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y(baseline):.2f}" y2="{y(baseline):.2f}" stroke="#888" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{y(baseline) - 6:.2f}" text-anchor="end" fill="#666">'
            f"baseline {baseline:g}</text>"
        )
    if points:
        path = [f"{x(points[0].minutes):.2f},{y(points[0].score):.2f}"]
        for before, point in zip(points, points[1:], strict=False):
            path.append(f"{x(point.minutes):.2f},{y(before.score):.2f}")
            path.append(f"{x(point.minutes):.2f},{y(point.score):.2f}")
        path.append(f"{x(span_minutes):.2f},{y(points[-1].score):.2f}")
        parts.append(f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{" ".join(path)}"/>')
        for point in points:
            parts.append(
                f'<circle class="best" data-minutes="{point.minutes!r}" data-score="{point.score!r}" '
                f'data-candidate="{point.candidate_id}" cx="{x(point.minutes):.2f}" '
                f'cy="{y(point.score):.2f}" r="3.5" fill="#1f6feb"/>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _axes(x, y, low: float, high: float, minutes: float, metric: str, direction: str) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    better = "lower is better" if direction == "min" else "higher is better"
    lines = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="black"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>',
        f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 14}" text-anchor="middle">'
        "minutes since the start</text>",
        f'<text transform="translate(16 {(TOP + bottom) / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"best {escape(metric)} so far ({better})</text>",
    ]
    for i in range(5):
        value = low + (high - low) * i / 4
        lines.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.2f}" text-anchor="end">{_tick(value)}</text>')
        at = minutes * i / 4
        lines.append(f'<text x="{x(at):.2f}" y="{bottom + 18}" text-anchor="middle">{at:.3g}</text>')
    return lines


def _tick(value: float) -> str:
    return f"{value:.6g}"
