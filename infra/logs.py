"""Structured logs: stable event names and ids only, never personal data."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import unicodedata
from typing import Any

_FIELDS = "bridge_fields"


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log a stable event name with identifying fields (references, ids, counts; no names)."""
    logger.log(level, event, extra={_FIELDS: fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update(getattr(record, _FIELDS, {}))
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where it happened; its message may quote input, so it is left out.
            out["exception"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                out["at"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return _printable_json(json.dumps(out, ensure_ascii=False, default=str))


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes an astral character as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _printable_json(text: str) -> str:
    """`text` with what json.dumps(ensure_ascii=False) leaves literal but a terminal would act on
    (bidi overrides, U+2028/2029, C1 controls, zero-width marks) as JSON escapes: same value."""
    if text.isprintable():
        return text  # the common case; a space counts as printable
    return "".join(c if c.isprintable() else _json_escape(c) for c in text)


# Categories that can end a line or reorder/hide text on a terminal: C0/C1 controls (Cc), format
# characters incl. bidi overrides and zero-width marks (Cf), line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"  # so an escape in the output cannot be forged by a literal backslash
    if unicodedata.category(char) not in _UNPRINTABLE:
        return char
    code = ord(char)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named or code < 0x100:
        return named or f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_text(value: object) -> str:
    """`value` as text on one line: line breaks, controls and bidi characters escaped."""
    text = str(value)
    if text.isprintable() and "\\" not in text:
        return text  # the common case: ids, counts, event names
    return "".join(_escape_char(c) for c in text)


def _text_value(value: object) -> str:
    text = escape_text(value)
    # A value with a space, quote or `=` would read as further fields: quote it, logfmt style.
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal: time, level, event, key=value fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one line of text; values cannot break or forge the line.

        Values may come from a request (a provider id from the path), so every key, value and
        the event name is escaped: a CR/LF or a bidi override would otherwise forge log lines.
        """
        fields = getattr(record, _FIELDS, {})
        extra = " ".join(f"{escape_text(k)}={_text_value(v)}" for k, v in fields.items())
        ts = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        event = escape_text(record.getMessage())
        line = f"{ts} {record.levelname:<7} {event} {extra}".rstrip()
        if record.exc_info and record.exc_info[0] is not None:
            line += f" exception={record.exc_info[0].__name__}"
        return line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send the service's logs to stderr in the chosen format (called by entry points only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Werkzeug's request lines would add a second, unstructured access log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def gunicorn_logconfig(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: its own error-log lines in the bridge's format.

    The access log keeps a bare message: `access_log_format` already writes it as JSON.
    Neither logger propagates, or the app's root handler would print each line twice.
    """
    formatter = "infra.logs.JsonFormatter" if fmt == "json" else "infra.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
        "handlers": {
            "error": {
                "class": "logging.StreamHandler",
                "formatter": "bridge",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "message",
                "stream": "ext://sys.stdout",
            },
        },
        "formatters": {
            "bridge": {"()": formatter},
            "message": {"format": "%(message)s"},
        },
    }
