"""The urlencoded body's own parser gives what `urllib.parse.parse_qsl` gives, errors included.

`bridge.intake.bodies.form_pairs` replaces the standard library's parser on the intake's hot
path (it skips the unquoting of names and values that need none); these tests hold it to
parse_qsl with the options the intake used: the same pairs, and the same exception class where
parse_qsl raises (too many fields, a field without "=", an escape that is not the charset).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.intake.bodies import form_pairs

#: Characters that matter to the parser, and a few that do not, so that examples hit them.
ALPHABET = st.sampled_from(
    [*"&=+%;ab.0 ", "%20", "%2B", "%26", "%3D", "%C3%9F", "%ZZ", "%C3", "%FF", "ß", "é"]
)


def reference(text: str, charset: str, max_fields: int) -> list[tuple[str, str]] | type:
    """parse_qsl's answer as the intake called it, or the class of what it raised."""
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding=charset,
            errors="strict",
            max_num_fields=max_fields,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        return type(exc)


def ours(text: str, charset: str, max_fields: int) -> list[tuple[str, str]] | type:
    """form_pairs's answer, or the class of what it raised."""
    try:
        return form_pairs(text, charset, max_fields)
    except (ValueError, UnicodeDecodeError) as exc:
        return type(exc)


@settings(derandomize=True, database=None, max_examples=1500)
@given(
    text=st.lists(ALPHABET, min_size=1, max_size=30).map("".join),
    charset=st.sampled_from(["utf-8", "latin-1"]),
    max_fields=st.integers(min_value=1, max_value=8),
)
def test_generated_texts_parse_as_parse_qsl_parses_them(
    text: str, charset: str, max_fields: int
) -> None:
    """Any text of the parser's special characters: the same pairs or the same error."""
    assert ours(text, charset, max_fields) == reference(text, charset, max_fields)


@pytest.mark.parametrize(
    "text",
    [
        "a=1&b=2",
        "a=&b=",
        "a=1&&b=2",
        "a",
        "=x",
        "a=b=c",
        "keeper.address.street=Bahnhofstra%C3%9Fe&phone=%2B49+6081+1234-0",
        "a+b=c+d&%41=%42",
        "a=%E4",
        "a=%zz",
        "a=1&",
        "&a=1",
        "a=1;b=2",
    ],
)
@pytest.mark.parametrize("charset", ["utf-8", "latin-1"])
def test_known_cases_parse_as_parse_qsl_parses_them(text: str, charset: str) -> None:
    """Blank values, repeated separators, escapes, "+" and broken escapes, one by one."""
    assert ours(text, charset, 200) == reference(text, charset, 200)


def test_too_many_fields_raise_as_parse_qsl_raises() -> None:
    """One field over the limit is refused before anything is parsed."""
    text = "&".join(f"f{i}=v" for i in range(5))
    assert ours(text, "utf-8", 4) is ValueError
    assert reference(text, "utf-8", 4) is ValueError
    assert ours(text, "utf-8", 5) == reference(text, "utf-8", 5)
