"""The mixed load: every service, town and body format, dangerous dogs, keys and repeats.

Each submission is one of the README's examples (`examples/`) with the town, the breed and the
idempotency key changed, so every body is valid and the offices it must reach are known in
advance: a dog goes to the joint tax office, a dangerous one (Rottweiler) also to the joint
public-order office, a traffic order to the public-order office, whichever town it comes from.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from bench.samples import EXAMPLES, IDEMPOTENCY_FIELD

TAX_OFFICE = "usingen-steueramt"
ORDER_OFFICE = "neu-anspach-ordnungsamt"
#: town id -> (postal code, town name) of the two member municipalities in config/routing.toml
TOWNS = {"usingen": ("61250", "Usingen"), "neu-anspach": ("61267", "Neu-Anspach")}
#: (service, body format) and how often each comes up
KINDS = (
    ("dog-registration", "form", 4),
    ("dog-registration", "multipart", 1),
    ("traffic-order", "json", 2),
    ("traffic-order", "form", 2),
    ("traffic-order", "construction", 1),
)
DANGEROUS_SHARE = 0.25  # of dog registrations


@dataclass
class Planned:
    """One submission of the load: what is sent and where it must arrive."""

    index: int
    service: str
    town: str
    fmt: str
    dangerous: bool
    key: str
    key_in_body: bool  # Formcycle's process_id field, else the Idempotency-Key header
    repeat: str  # "", "later" (sent again after the others) or "concurrent" (twice at once)
    offices: tuple[str, ...]
    request: dict[str, Any] = field(repr=False, default_factory=dict)


def _form_pairs(name: str) -> list[tuple[str, str]]:
    raw = (EXAMPLES / name).read_text(encoding="utf-8").strip()
    return [(k, v) for k, v in parse_qsl(raw, keep_blank_values=True) if k != IDEMPOTENCY_FIELD]


def _construction_pairs() -> list[tuple[str, str]]:
    lines = (EXAMPLES / "traffic-order-construction.fields").read_text(encoding="utf-8")
    pairs = [tuple(line.split("=", 1)) for line in lines.splitlines() if "=" in line]
    return [(k, v) for k, v in pairs if k != IDEMPOTENCY_FIELD]


def _place(pairs: list[tuple[str, str]], prefix: str, town: str) -> list[tuple[str, str]]:
    code, name = TOWNS[town]
    swap = {f"{prefix}.postal_code": code, f"{prefix}.town": name}
    return [(k, swap.get(k, v)) for k, v in pairs]


class Bodies:
    """Builds the request of each planned submission from the examples."""

    def __init__(self) -> None:
        """Read the examples once."""
        self.dog = _form_pairs("dog-registration.form")
        self.traffic = _form_pairs("traffic-order.form")
        self.construction = _construction_pairs()
        self.traffic_json = json.loads((EXAMPLES / "traffic-order.json").read_text("utf-8"))
        self.traffic_json.pop(IDEMPOTENCY_FIELD, None)
        self.site_plan = (EXAMPLES / "lageplan.pdf").read_bytes()

    def request(self, p: Planned) -> dict[str, Any]:
        """`requests` keyword arguments (data/json/files/headers) for `p`."""
        headers = {} if p.key_in_body else {"Idempotency-Key": p.key}
        key_pair = [(IDEMPOTENCY_FIELD, p.key)] if p.key_in_body else []
        if p.service == "dog-registration":
            pairs = _place(self.dog, "keeper.address", p.town)
            if p.dangerous:
                pairs = [(k, "Rottweiler" if k == "dog.breed" else v) for k, v in pairs]
            pairs += key_pair
            if p.fmt == "multipart":
                return {"files": [(k, (None, v)) for k, v in pairs], "headers": headers}
            return {"data": urlencode(pairs), "headers": headers | _FORM}
        if p.fmt == "json":
            body = json.loads(json.dumps(self.traffic_json))
            code, name = TOWNS[p.town]
            body["location"].update(postal_code=code, town=name)
            if p.key_in_body:
                body[IDEMPOTENCY_FIELD] = p.key
            return {"json": body, "headers": headers}
        if p.fmt == "construction":
            pairs = _place(self.construction, "location", p.town) + key_pair
            files: list[tuple[str, tuple[str | None, str | bytes, str]]]
            files = [(k, (None, v, "text/plain")) for k, v in pairs]
            files.append(("site_plan", ("lageplan.pdf", self.site_plan, "application/pdf")))
            return {"files": files, "headers": headers}
        pairs = _place(self.traffic, "location", p.town) + key_pair
        return {"data": urlencode(pairs), "headers": headers | _FORM}


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def plan(count: int, rng: random.Random, run_id: str, repeat_share: float = 0.1) -> list[Planned]:
    """`count` submissions over every service, town and format; `repeat_share` of them sent twice
    (half later, half concurrently)."""
    weighted = [(s, f) for s, f, w in KINDS for _ in range(w)]
    bodies = Bodies()
    out = []
    for i in range(count):
        service, fmt = weighted[i % len(weighted)] if i < len(weighted) else rng.choice(weighted)
        town = list(TOWNS)[i % 2] if i < 2 * len(weighted) else rng.choice(list(TOWNS))
        dangerous = service == "dog-registration" and (i < 2 or rng.random() < DANGEROUS_SHARE)
        roll = rng.random()
        repeat = (
            "" if roll >= repeat_share else ("later" if roll < repeat_share / 2 else "concurrent")
        )
        offices = (
            (TAX_OFFICE, ORDER_OFFICE)
            if dangerous
            else (TAX_OFFICE,)
            if service == "dog-registration"
            else (ORDER_OFFICE,)
        )
        p = Planned(
            i,
            service,
            town,
            fmt,
            dangerous,
            f"chaos-{run_id}-{i}",
            rng.random() < 0.5,
            repeat,
            offices,
        )
        p.request = bodies.request(p)
        out.append(p)
    return out
