"""Default element names at the webhook: what a form may post besides them, and what is refused."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from schemas import messages as m
from store.engine import Store
from store.models import Submission
from tests.conftest import ROOT, snapshot
from tests.factories import dog, flatten
from tests.schemas.samples import DELETE
from tests.webhook_support import FORM, assert_problem, form_body, post

DOG = "dog-registration"
NOT_A_FILE = (
    "Eine Anlage muss als Datei mitgeschickt werden; Angaben zu einer Datei ohne ihren Inhalt "
    "werden nicht angenommen."
)


@pytest.fixture
def environ(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The shipped configuration, refusing keys the dog registration does not know."""
    text = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    old = 'unknown_fields = "ignore"        # "reject" refuses keys the schema does not know'
    assert text.count(old) == 1
    path = tmp_path / "routing.toml"
    path.write_text(text.replace(old, 'unknown_fields = "reject"'), encoding="utf-8")
    environ["BRIDGE_CONFIG"] = str(path)
    return environ


def test_default_names_aliases_and_dotted_paths_mix(client: FlaskClient) -> None:
    """One form may use default names, configured aliases and dotted paths side by side."""
    payload = dog({"keeper.first_name": DELETE, "dog.name": DELETE, "keeper.address.town": DELETE})
    extra = [("tfVorname", "Erika"), ("dogName", "Luna"), ("keeperAddressTown", "Neu-Anspach")]
    response = post(client, DOG, form_body(payload, extra), FORM)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_a_list_of_values_by_one_repeated_name(
    client: FlaskClient, store: Store, app: Flask
) -> None:
    """`dogMainBreeds` sent twice (a multiple choice) is the list `dog.main_breeds`."""
    payload = dog({"dog.is_mixed_breed": True, "dog.breed": DELETE})
    extra = [("dogMainBreeds", "Labrador Retriever"), ("dogMainBreeds", "Pudel")]
    response = post(client, DOG, form_body(payload, extra), FORM)
    assert response.status_code == 202, response.get_data(as_text=True)
    number = int(response.get_json()["reference"].rsplit("-", 1)[1])
    with store.read() as session:
        stored = session.get(Submission, number)
        assert stored is not None
        assert stored.data is not None
        data = app.extensions["bridge"].vault.decrypt_json(stored.data)
    assert data["dog"]["main_breeds"] == ["Labrador Retriever", "Pudel"]


def test_a_misspelt_element_name_is_named(client: FlaskClient, store: Store) -> None:
    """A name that is neither a default name, an alias nor a field path is an unknown field
    (the service refuses unknown fields), next to the field it failed to fill."""
    before = snapshot(store)
    body = form_body(dog({"keeper.first_name": DELETE}), [("keeperFirstNam", "Erika")])
    assert_problem(
        post(client, DOG, body, FORM),
        422,
        "validation",
        errors=[("keeperFirstNam", str(m.UNKNOWN)), ("keeper.first_name", str(m.REQUIRED))],
    )
    assert snapshot(store) == before


def test_one_field_under_two_names_is_refused(client: FlaskClient, store: Store) -> None:
    """An alias and the default name of the same field, both filled in: the form's mistake,
    said as such, at the field (not "please enter a text" about a list of two)."""
    before = snapshot(store)
    fields = [(k, v) for k, v in flatten(dog()) if k != "keeper.first_name"]
    fields += [("tfVorname", "Erika"), ("keeperFirstName", "Eva")]
    response = post(client, DOG, urlencode(fields).encode(), FORM)
    body = assert_problem(
        response,
        422,
        "validation",
        errors=[
            (
                "keeper.first_name",
                "Diese Angabe kam unter zwei Elementnamen (tfVorname, keeperFirstName). Das liegt "
                "am Formular, nicht an Ihren Angaben: bitte wenden Sie sich an die Stelle, die das "
                "Formular anbietet.",
            )
        ],
    )
    assert body["status"] == 422
    assert snapshot(store) == before


def test_an_empty_second_name_is_not_a_second_value(client: FlaskClient) -> None:
    """Formcycle posts every element, filled in or not: an empty one does not count."""
    fields = [("keeperFirstName", ""), *flatten(dog())]
    response = post(client, DOG, urlencode(fields).encode(), FORM)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_a_file_detail_by_its_name_is_not_a_file(client: FlaskClient, store: Store) -> None:
    """`attachments0Filename` names a detail the bridge writes from the file itself."""
    before = snapshot(store)
    body = form_body(dog(), [("attachments0Filename", "kaufvertrag.pdf")])
    assert_problem(
        post(client, DOG, body, FORM), 422, "validation", errors=[("attachments.0", NOT_A_FILE)]
    )
    assert snapshot(store) == before
