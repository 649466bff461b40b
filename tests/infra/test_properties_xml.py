"""Property tests for XML: entity bombs, external entities, random bytes and the xml channel's data.

Every XML read goes through `infra.safexml.parse_xml`; whatever the bytes, it returns a root
element or raises `XMLError` (never another exception, never an expansion, never a network
or file access). And whatever validated data a case carries, the xml channel turns it into a
document the same parser reads back with every value in place.
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from infra.safexml import XMLError, parse_xml
from integrations.channels.xml import _scalar_text, add_value, xml_text

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Hits(http.server.BaseHTTPRequestHandler):
    """Counts every request; a parser that fetches an entity or DTD shows up here."""

    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'<!ENTITY x "fetched">')

    def log_message(self, *_: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def listener() -> Iterator[str]:
    """A loopback HTTP server that counts the requests it gets."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def bomb(depth: int, width: int) -> bytes:
    """A billion-laughs document: `width`**`depth` copies of "lol" once expanded."""
    refs = ["<!ENTITY e0 'lol'>"] + [
        f"<!ENTITY e{n} '{('&e' + str(n - 1) + ';') * width}'>" for n in range(1, depth + 1)
    ]
    return f"<?xml version='1.0'?><!DOCTYPE r [{''.join(refs)}]><r>&e{depth};</r>".encode()


@EXAMPLES
@given(depth=st.integers(1, 12), width=st.integers(2, 12))
def test_entity_bombs_are_refused_without_expanding(depth: int, width: int) -> None:
    started = time.perf_counter()

    with pytest.raises(XMLError, match=r"DTD|line"):
        parse_xml(bomb(depth, width))

    assert time.perf_counter() - started < 1.0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["entity", "parameter", "dtd"]),
    target=st.sampled_from(["http", "file"]),
    encoding=st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1"]),
)
def test_external_entities_and_dtds_are_never_fetched(
    listener: str, tmp_path_factory: pytest.TempPathFactory, kind: str, target: str, encoding: str
) -> None:
    secret = tmp_path_factory.mktemp("xxe") / "secret.txt"
    secret.write_text("TOP-SECRET")
    url = f"{listener}/x.dtd" if target == "http" else secret.as_uri()
    doctype = {
        "entity": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}">]><r>&x;</r>',
        "parameter": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]><r>&x;</r>',
        "dtd": f'<!DOCTYPE r SYSTEM "{url}"><r>x</r>',
    }[kind]
    document = f"<?xml version='1.0' encoding='{encoding}'?>{doctype}".encode(encoding)
    before = _Hits.hits

    with pytest.raises(XMLError):
        parse_xml(document)

    assert _Hits.hits == before


@EXAMPLES
@given(data=st.binary(max_size=2000))
def test_any_bytes_give_a_root_or_xml_error(data: bytes) -> None:
    try:
        root = parse_xml(data)
    except XMLError:
        return
    assert isinstance(root.tag, str)


@EXAMPLES
@given(
    depth=st.integers(1, 20_000),
    prefix=st.sampled_from([b"", b"<?xml version='1.0' encoding='UTF-8'?>", b"\xef\xbb\xbf"]),
    tail=st.sampled_from([b"", b"\xff\xfe", b"\xc3", b"<!-- c -->"]),
)
def test_deep_or_broken_nesting_gives_a_root_or_xml_error(
    depth: int, prefix: bytes, tail: bytes
) -> None:
    document = prefix + b"<a>" * depth + tail + b"</a>" * depth
    try:
        root = parse_xml(document)
    except XMLError:
        return
    assert root.tag == "a"


# --- the xml channel: validated data -> document -> safe parser --------------------------------

SCALARS = (
    st.text(max_size=40)
    | st.integers(-(10**12), 10**12)
    | st.booleans()
    | st.none()
    | st.dates()
    | st.datetimes()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
)
KEYS = st.text(min_size=1, max_size=30)
DATA = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=30,
)


def leaves(value: Any) -> Iterator[str | None]:
    """The texts the channel writes for `value`'s scalars, in document order (None: nil)."""
    if isinstance(value, dict | list):
        for child in value.values() if isinstance(value, dict) else value:
            yield from leaves(child)
    elif value is None:
        yield None
    else:
        yield xml_text(_scalar_text(value))


def names(key: str, value: Any) -> Iterator[str]:
    """The element names (or `field` names) the channel writes for `key: value`, in order."""
    yield xml_text(key)
    if isinstance(value, dict):
        for k, child in value.items():
            yield from names(str(k), child)
    elif isinstance(value, list):
        for child in value:
            yield from names("item", child)


def parsed_leaves(root: etree._Element) -> Iterator[str | None]:
    """The text of each scalar element below `root`, in document order (None: nil)."""
    for node in root.iter():
        if node is root or len(node) or (node.text is None and node.get("nil") != "true"):
            continue  # a container, or an empty mapping or list
        yield None if node.get("nil") == "true" else node.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(KEYS, DATA, max_size=8))
# A key spelled "field" is an XML name: its element has no name attribute, unlike the
# <field name="..."> that carries a key which is not one (found by hypothesis in CI).
@example(data={"field": None, "a b": {"field": "x"}})
def test_any_case_data_becomes_xml_the_safe_parser_reads_back(data: dict[str, Any]) -> None:
    root = etree.Element("data")
    for key, value in data.items():
        add_value(root, key, value)
    document = etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    parsed = parse_xml(document)

    # lxml writes "" as an element without text: compare the non-empty texts and the nils.
    assert [t for t in parsed_leaves(parsed) if t != ""] == [t for t in leaves(data) if t != ""]
    expected_names = [n for key, value in data.items() for n in names(key, value)]
    got_names = [
        str(node.get("name")) if node.tag == "field" and "name" in node.attrib else str(node.tag)
        for node in parsed.iter()
        if node is not parsed
    ]
    assert got_names == expected_names


@pytest.mark.parametrize("key", ["A\n", "name\n", "a b", "xmlish", "1st"])
def test_keys_that_are_not_xml_names_keep_their_spelling(key: str) -> None:
    """A key with a trailing newline once passed the name check (``$`` matches before a final
    newline) and lxml refused it: it must travel as ``<field name="...">`` like other keys."""
    root = etree.Element("data")
    add_value(root, key, "Wert")
    [element] = parse_xml(etree.tostring(root))
    assert (element.tag, element.get("name"), element.text) == ("field", key, "Wert")


def test_listener_counts_requests(listener: str) -> None:
    """The listener the fetch checks rely on does see a request (so a zero means no fetch)."""
    before = _Hits.hits
    with urllib.request.urlopen(f"{listener}/probe") as r:
        assert r.status == 200
    assert _Hits.hits == before + 1
