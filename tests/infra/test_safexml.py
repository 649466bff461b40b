"""infra.safexml: the one XML parser refuses entities, DTDs and network access."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from demo_backoffice import DemoBackOffice
from infra.safexml import XMLError, load_xsd, parse_xml

# The stand-in back office serves the DTD a parser must never fetch.
from tests.integrations.channels.conftest import backoffice  # noqa: F401 - a fixture, by name

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""


def test_parses_plain_xml_and_keeps_comments() -> None:
    root = parse_xml(
        b"<?xml version='1.0' encoding='UTF-8'?><a x='1'><!-- hi --><b>\xc3\xa4</b></a>"
    )

    assert root.tag == "a"
    assert root.findtext("b") == "ä"
    assert len(root) == 2  # the comment is kept


def test_external_entity_reading_a_local_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:geheim-4711\n")
    payload = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]><r>&x;</r>'
    ).encode()

    with pytest.raises(XMLError) as info:
        parse_xml(payload)
    assert "geheim" not in str(info.value)


def test_parameter_entity_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.dtd"
    evil.write_text('<!ENTITY leak "geheim">')
    payload = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{evil.as_uri()}"> %p;]>'
        "<r>&leak;</r>"
    ).encode()

    with pytest.raises(XMLError):
        parse_xml(payload)


def test_internal_entities_are_refused_not_expanded() -> None:
    payload = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "expanded">]><r>&a;</r>'

    with pytest.raises(XMLError, match="DTD"):
        parse_xml(payload)


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.monotonic()
    # libxml2 may already stop at its amplification limit; otherwise the DTD rule refuses it.
    with pytest.raises(XMLError) as info:
        parse_xml(BILLION_LAUGHS)
    assert time.monotonic() - started < 1
    assert "lol" not in str(info.value)


def test_external_dtd_is_never_fetched(
    backoffice: DemoBackOffice,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    payload = f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{backoffice.url}/evil.dtd"><r/>'.encode()

    with pytest.raises(XMLError):
        parse_xml(payload)
    assert backoffice.requests() == []


@pytest.mark.parametrize("broken", [b"", b"   ", b"<a>", b"<a></b>", b"not xml", b"<a/><b/>"])
def test_broken_input_raises_xml_error(broken: bytes) -> None:
    with pytest.raises(XMLError) as info:
        parse_xml(broken)
    assert isinstance(info.value, ValueError)


def test_text_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]


def test_load_xsd_errors(tmp_path: Path) -> None:
    with pytest.raises(XMLError, match="cannot read"):
        load_xsd(tmp_path / "missing.xsd")
    not_a_schema = tmp_path / "x.xsd"
    not_a_schema.write_bytes(b"<a/>")
    with pytest.raises(XMLError, match="invalid schema"):
        load_xsd(not_a_schema)
