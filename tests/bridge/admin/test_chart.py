"""The overview's server-drawn chart: accessible SVG, escaped text, one bar per day."""

from __future__ import annotations

import datetime as dt

import pytest

from bridge.admin.chart import office_chart, office_charts

DAYS = [dt.date(2026, 11, 18) + dt.timedelta(days=i) for i in range(14)]


def test_chart_is_an_image_with_title_description_and_a_bar_per_day() -> None:
    """role=img, labelled by its title and description; each bar has its day and count."""
    counts = [0] * 12 + [3, 1]
    svg = str(office_chart("Steueramt Usingen", DAYS, counts, chart_id="c0"))
    assert svg.startswith('<svg class="chart" role="img"')
    assert 'aria-labelledby="c0-t c0-d"' in svg
    assert '<title id="c0-t">Fehlgeschlagene Zustellungen an Steueramt Usingen</title>' in svg
    assert "4 Fehler vom 18.11. bis 01.12.; höchstens 3 an einem Tag." in svg
    assert svg.count("<rect ") == 14
    assert "<title>30.11.: 3</title>" in svg


def test_office_names_are_escaped() -> None:
    """A name from the configuration cannot inject markup into the page."""
    svg = str(office_chart('<script>x</script>"', DAYS, [1] * 14, chart_id="c1"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_offices_without_failures_are_left_out_and_the_worst_comes_first() -> None:
    """Only offices with failures get a chart, most failures first."""
    rows = office_charts(
        DAYS,
        {"a": [0] * 14, "b": [1] * 14, "c": [2] * 14},
        {"b": "Ordnungsamt", "c": "Steueramt"},
    )
    assert [(office, name, total) for office, name, total, _ in rows] == [
        ("c", "Steueramt", 28),
        ("b", "Ordnungsamt", 14),
    ]


def test_one_count_per_day() -> None:
    """Counts and days must match."""
    with pytest.raises(ValueError, match="one count per day"):
        office_chart("x", DAYS, [1], chart_id="c2")
