"""dog-registration@2, a second schema version for the tests only, and processes that know it.

Version 2 adds one optional field, the dog's tattoo number (`dog.tattoo_number`), and declares
how its data become version 1 (the field is left out). It is never in the shipped registry:
a test registers it in its own process (`dog_v2` fixture) and starts the worker or the CLI
through this module, which registers it there too before running them:

    python -m tests.schema_versions worker work
    python -m tests.schema_versions bridge check-config
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterator

import pytest

from schemas import SCHEMAS, ServiceSchema, drop_fields
from schemas.blocks import Nested, Str, title
from schemas.dog_registration import (
    DogRegistrationSchema,
    DogSchema,
    dog_flag_notes,
    dog_flags,
)

V2 = "dog-registration@2"


class DogV2Schema(DogSchema):
    """The dog of version 2: everything of version 1 and the tattoo number."""

    tattoo_number = Str(max_length=40, metadata=title("Tätowiernummer"))


class DogRegistrationV2Schema(DogRegistrationSchema):
    """Version 2 of "Hund anmelden" (tests only)."""

    dog = Nested(DogV2Schema, required=True, metadata=title("Hund"))


def dog_v2(*, convertible: bool = True) -> ServiceSchema:
    """The version 2 entry; `convertible=False` leaves out its conversion to version 1."""
    return ServiceSchema(
        key=V2,
        service="dog-registration",
        version=2,
        leika="99102013104000",
        title_de="Hund anmelden",
        schema_class=DogRegistrationV2Schema,
        flagger=dog_flags,
        flag_notes=dog_flag_notes,
        to_previous=drop_fields("dog.tattoo_number") if convertible else None,
    )


def register() -> None:
    """Register version 2 in this process (once)."""
    if V2 not in SCHEMAS:
        SCHEMAS.register(dog_v2())


@pytest.fixture
def dog_v2_registered() -> Iterator[ServiceSchema]:
    """Version 2 registered in the test's process for the test, and withdrawn after it."""
    entry = SCHEMAS.register(dog_v2())
    yield entry
    SCHEMAS.unregister(V2)


@pytest.fixture
def dog_v2_without_conversion() -> Iterator[ServiceSchema]:
    """Version 2 as a change that declares no way back to version 1."""
    entry = SCHEMAS.register(dog_v2(convertible=False))
    yield entry
    SCHEMAS.unregister(V2)


def main(argv: list[str]) -> None:
    """Run `python -m <argv[0]> <argv[1:]>` with version 2 registered."""
    register()
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
