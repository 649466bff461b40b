"""Both log formats: one record is one line, whatever the values carry."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from infra.logs import JsonFormatter, TextFormatter, log_event


def _text_lines(event: str, **fields: Any) -> list[str]:
    return _lines(TextFormatter(), event, **fields)


def _lines(formatter: logging.Formatter, event: str, **fields: Any) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.infra.text_log")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        log_event(logger, event, **fields)
    finally:
        logger.handlers[:] = []
    return stream.getvalue().splitlines()


def test_control_characters_in_values_cannot_forge_a_line() -> None:
    """CR, LF, other C0/C1 controls and bidi overrides come out escaped, on one line."""
    forged = "town-a\r\n00:00:00 ERROR admin.login_succeeded user=admin\u202etxt.exe\x1b[31m\x85"
    lines = _text_lines("payment.callback_unknown", provider=forged, count=3)
    assert len(lines) == 1
    line = lines[0]
    assert "\r" not in line
    assert "\u202e" not in line
    assert "\x1b" not in line
    assert "\x85" not in line
    assert "\\r\\n" in line
    assert "\\u202e" in line
    assert "\\x1b" in line
    assert "\\x85" in line
    assert line.endswith(" count=3")


def test_values_cannot_forge_fields_and_keys_and_events_are_escaped() -> None:
    """A space or `=` in a value is quoted; the event name and keys are escaped as well."""
    (line,) = _text_lines("odd\nevent", provider="x level=ERROR", **{"k\ney": "v"})
    assert 'provider="x level=ERROR"' in line
    assert "odd\\nevent" in line
    assert "k\\ney=v" in line


def test_json_lines_escape_bidi_and_separators_that_json_leaves_literal() -> None:
    """json.dumps(ensure_ascii=False) keeps U+202E, U+2028 and C1 controls as they are: a
    terminal would reorder or break the line. They come out as JSON escapes, same value."""
    forged = "provider\u202etxt.exe\u2028\u2029\x85\u200b\U000e0041 Grüße"
    (line,) = _lines(JsonFormatter(), "payment.callback_unknown", provider=forged)
    for char in ("\u202e", "\u2028", "\u2029", "\x85", "\u200b", "\U000e0041"):
        assert char not in line
    assert "Grüße" in line  # printable text stays readable
    assert json.loads(line)["provider"] == forged


@given(st.text())
def test_json_lines_are_one_printable_line_that_reads_back(value: str) -> None:
    """Any value: one line, every character printable or a space, and json.loads returns it."""
    lines = _lines(JsonFormatter(), "event", value=value)
    assert len(lines) == 1
    assert all(c.isprintable() or c == " " for c in lines[0])
    assert json.loads(lines[0])["value"] == value
