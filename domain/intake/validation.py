"""The 422 answer: every failing field of a submission, each with its bilingual message."""

from __future__ import annotations

from typing import Any

from domain.problems import FieldError, Problem, msg
from schemas import Msg


def problem_422(errors: list[FieldError]) -> Problem:
    """The validation problem listing every failing field."""
    return Problem(
        422,
        "validation",
        msg("Die Angaben sind unvollständig oder fehlerhaft.", "The submission is not valid."),
        msg(
            f"{len(errors)} Angabe(n) müssen korrigiert werden.",
            f"{len(errors)} field(s) need to be corrected.",
        ),
        errors=errors,
    )


def invalid_field(path: str, de: str, en: str) -> Problem:
    """The validation problem of one failing field."""
    return problem_422([FieldError(path, msg(de, en))])


def field_errors(messages: Any, prefix: str = "") -> list[FieldError]:
    """Flatten marshmallow's nested error messages into dotted-path field errors."""
    out: list[FieldError] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                # An error about a block as a whole (e.g. "not an object") belongs to the block.
                out.extend(field_errors(value, prefix))
            else:
                out.extend(field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(field_errors(item, prefix))
    else:
        text = messages if isinstance(messages, Msg) else Msg(str(messages), en=str(messages))
        out.append(FieldError(prefix or "_schema", text))
    return out
