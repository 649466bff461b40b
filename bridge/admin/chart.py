"""The overview's chart: failed deliveries per office and day, drawn on the server as SVG.

No JavaScript and no external library: each office gets a small bar chart with a title and
a description for screen readers, and the page shows the same numbers as a table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

from bridge.admin.labels import local_day

WIDTH = 280
HEIGHT = 64
BAR_GAP = 2
# Dark red on white: contrast 7.6:1, readable also for bars as thin as these.
BAR_COLOUR = "#9b1c1c"
AXIS_COLOUR = "#4b5563"


def office_chart(
    office_name: str, days: Sequence[dt.date], counts: Sequence[int], *, chart_id: str
) -> Markup:
    """One office's failures per day as an inline SVG bar chart (`role="img"` with title/desc)."""
    if len(days) != len(counts):
        raise ValueError("one count per day")
    peak = max(counts, default=0)
    n = max(len(counts), 1)
    bar_w = (WIDTH - BAR_GAP * (n - 1)) / n
    total = sum(counts)
    title = f"Fehlgeschlagene Zustellungen an {office_name}"
    if days:
        desc = (
            f"{total} Fehler vom {local_day(days[0])} bis {local_day(days[-1])}; "
            f"höchstens {peak} an einem Tag."
        )
    else:
        desc = "Keine Tage."
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT + 14}" '
        f'width="{WIDTH}" height="{HEIGHT + 14}" aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
        f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" stroke="{AXIS_COLOUR}" />',
    ]
    for i, (day, count) in enumerate(zip(days, counts, strict=True)):
        h = 0.0 if peak == 0 else (HEIGHT - 4) * count / peak
        x = i * (bar_w + BAR_GAP)
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'fill="{BAR_COLOUR}"><title>{escape(local_day(day))}: {count}</title></rect>'
        )
    if days:
        parts.append(
            f'<text x="0" y="{HEIGHT + 12}" font-size="10" fill="{AXIS_COLOUR}">'
            f"{escape(local_day(days[0]))}</text>"
        )
        parts.append(
            f'<text x="{WIDTH}" y="{HEIGHT + 12}" font-size="10" text-anchor="end" '
            f'fill="{AXIS_COLOUR}">{escape(local_day(days[-1]))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def office_charts(
    days: Sequence[dt.date],
    per_office: Mapping[str, Sequence[int]],
    names: Mapping[str, str],
) -> list[tuple[str, str, int, Markup]]:
    """(office id, office name, total, chart) for each office with failures, most failures first."""
    rows = []
    for index, (office, counts) in enumerate(
        sorted(per_office.items(), key=lambda item: (-sum(item[1]), item[0]))
    ):
        if sum(counts) == 0:
            continue
        name = names.get(office, office)
        rows.append(
            (office, name, sum(counts), office_chart(name, days, counts, chart_id=f"c{index}"))
        )
    return rows
