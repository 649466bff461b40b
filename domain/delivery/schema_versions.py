"""Which schema version an office gets a case in, and the case's data converted to it.

A case is stored as received, in the version intake validated it against. An office pinned to
an older version (`schema_versions` in its routing table) gets the data converted down to that
version, step by step (docs/schema-versions.md); the envelope names the version actually sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from domain.config import Config
from infra.logs import log_event
from schemas import SCHEMAS

log = logging.getLogger(__name__)


def office_version(config: Config, office_id: str, service_id: str) -> int | None:
    """The version of the service's schema the office takes: its pin, else the service's own.

    None when the service is no longer configured (the case then goes out as stored).
    """
    office = config.offices.get(office_id)
    if office is not None and service_id in office.schema_versions:
        return office.schema_versions[service_id]
    service = config.services.get(service_id)
    if service is None or service.schema not in SCHEMAS:
        return None
    return SCHEMAS.get(service.schema).version


def as_sent(
    config: Config, office_id: str, service_id: str, schema: str, data: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The schema key and data a case stored as ``schema`` goes to the office with.

    Never converts upwards: a case received before the service moved to a newer version goes
    out as received. check-config makes sure every pin can be reached from the service's
    schema; should a case stored in a newer version than that not be convertible (its schema
    declares no step down), it goes out as stored, under its own key, so the envelope never
    claims a version its data do not have.
    """
    version = office_version(config, office_id, service_id)
    if version is None or schema not in SCHEMAS or version >= SCHEMAS.get(schema).version:
        return schema, dict(data)
    try:
        return SCHEMAS.convert(schema, data, version)
    except (KeyError, ValueError):
        log_event(
            log,
            "delivery.schema_not_converted",
            level=logging.WARNING,
            office=office_id,
            schema=schema,
            wanted=version,
        )
        return schema, dict(data)


def has_path(data: Any, path: str) -> bool:
    """Whether a dotted field path ("attachments.0", "dog.photo") is in ``data``.

    A conversion that leaves out an upload field leaves out its file too: an attachment is
    sent only while the field it belongs to is still in the data sent.
    """
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True
