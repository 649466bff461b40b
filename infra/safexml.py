"""The one place that parses XML: no entities, no DTDs, no network, no huge trees.

Every other module parses XML through `parse_xml` (ruff bans the raw lxml parsers elsewhere),
so an XXE or billion-laughs payload from a back office or sender cannot reach a default parser.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

__all__ = ["XMLError", "load_xsd", "parse_xml"]


class XMLError(ValueError):
    """The input is not well-formed XML, or it uses a construct we refuse (DTD, entities)."""


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers keep state and are not meant to be shared by threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
    )


def _first_error(parser: etree.XMLParser) -> str:
    errors = parser.error_log
    if not errors:
        return "malformed XML"
    first = errors[0]
    # Only position and libxml2's error type: the message text may quote the document.
    return f"line {first.line}, column {first.column}: {first.type_name}"


def parse_xml(data: bytes, *, base_url: str | None = None) -> etree._Element:
    """Parse an XML document from bytes and return its root element.

    Documents with a DOCTYPE are refused outright: none of our formats needs one, and a DTD is
    where entity bombs and external entities live. Raises `XMLError` on any broken input.
    """
    if not isinstance(data, bytes):
        raise TypeError("parse_xml expects bytes (the raw document, with its own encoding)")
    if not data.strip():
        raise XMLError("empty document")
    parser = _parser()
    try:
        if base_url is None:
            root = etree.fromstring(data, parser)
        else:
            root = etree.fromstring(data, parser, base_url=base_url)
    except etree.XMLSyntaxError:
        raise XMLError(_first_error(parser)) from None
    if root is None:
        raise XMLError("no root element")
    docinfo = root.getroottree().docinfo
    # Any DOCTYPE gets an internal DTD node; `doctype` (missing from lxml-stubs) is the backstop.
    if docinfo.internalDTD is not None or bool(getattr(docinfo, "doctype", None)):
        raise XMLError("document type declarations (DTD) are not accepted")
    return root


def load_xsd(path: str | Path) -> etree.XMLSchema:
    """Load an XML Schema from a local file with the same safe parser.

    Relative `xs:include`/`xs:import` locations resolve against the file's directory; nothing
    is fetched from the network. Raises `XMLError` when the file is not a usable schema.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise XMLError(f"cannot read schema {path}: {exc.strerror}") from None
    root = parse_xml(data, base_url=path.resolve().as_uri())
    try:
        return etree.XMLSchema(root)
    except etree.XMLSchemaParseError as exc:
        raise XMLError(f"invalid schema {path}: {exc}") from None
