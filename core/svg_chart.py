"""A bar chart as inline SVG, drawn on the server: no JavaScript, readable by screen readers."""
from __future__ import annotations

from markupsafe import Markup, escape


def bar_chart(series: list[tuple[str, int]], title: str, width: int = 720, height: int = 200) -> Markup:
    """An SVG bar per (label, value), labelled with the title and every value (role=img, <title>, <desc>)."""
    top, bottom, left, right = 16, 34, 32, 20  # right: room for the last date label
    plot_h = height - top - bottom
    peak = max((v for _, v in series), default=0) or 1
    slot = (width - left - right) / max(1, len(series))
    bar_w = max(1.0, slot * 0.7)
    described = "; ".join(f"{label}: {value}" for label, value in series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title><desc>{escape(described)}</desc>",
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#8c959f"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>']
    for i, (label, value) in enumerate(series):
        h = plot_h * value / peak
        x = left + i * slot + (slot - bar_w) / 2
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="#0b5cad"><title>{escape(label)}: {value}</title></rect>')
        if i % 5 == 0 or i == len(series) - 1:  # every fifth date, so labels never overlap
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 18}" text-anchor="middle" '
                         f'font-size="10">{escape(label[5:] if len(label) == 10 else label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
