"""Municipality resolution: which member town a submission belongs to (AGS or postal code)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.config import Config, Municipality, Service
from domain.intake.forms import get_path
from domain.problems import FieldError, msg


def given(value: Any) -> Any:
    """A raw value as the schema reads it: text trimmed, and blank text meaning "not given"."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def resolve(
    config: Config, service: Service, data: Mapping[str, Any], failing: set[str]
) -> tuple[Municipality | None, FieldError | None]:
    """The citizen's municipality, from an explicit AGS or from the service's postal-code field.

    Fields that already failed validation (`failing`) are not looked up again, so a malformed
    AGS is reported once, by the schema.
    """
    ags = given(data.get("municipality_ags"))
    if ags is not None and "municipality_ags" not in failing:
        found = config.municipality_by_ags(str(ags))
        if found is None:
            return None, FieldError(
                "municipality_ags",
                msg(
                    "Diese Gemeinde nimmt an diesem Online-Dienst nicht teil.",
                    "This municipality does not take part in this online service.",
                ),
            )
        return found, None
    if ags is not None:
        return None, None
    path = service.municipality_field
    postal_code = given(get_path(data, path))
    if postal_code is None or path in failing:
        return None, None
    candidates = config.municipalities_by_postal_code(str(postal_code))
    if not candidates:
        return None, FieldError(
            path,
            msg(
                "Für diese Postleitzahl ist keine teilnehmende Gemeinde zuständig. "
                "Bitte wenden Sie sich an Ihre Gemeindeverwaltung.",
                "No participating municipality is responsible for this postal code. "
                "Please contact your municipality.",
            ),
        )
    if len(candidates) > 1:
        return None, FieldError(
            "municipality_ags",
            msg(
                "Die Postleitzahl gehört zu mehreren Gemeinden; bitte die Gemeinde angeben.",
                "The postal code belongs to several municipalities; please name the municipality.",
            ),
        )
    return candidates[0], None
