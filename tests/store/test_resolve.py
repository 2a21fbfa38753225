"""Name → number: contacts and the directory, forgiving case, accents, words and typos."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from store_helpers import Store
from typer.testing import Result

from tars.loading import load_project
from tars.store.contacts import resolve_in
from tars.store.errors import InvalidValue
from tars.store.resolve import resolve


@dataclass
class Person:
    id: int
    name: str
    phone: str


PEOPLE = [
    Person(1, "Alice Smith", "+447700900123"),
    Person(2, "Alice Jones", "+447700900456"),
    Person(3, "Zoë O'Neil", "+447700900789"),
]


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> object:
    from tars.scaffold import scaffold

    root = tmp_path_factory.mktemp("resolve")
    scaffold(root)
    return load_project(root).directory  # dentist (Bright Smile Dental), la_piazza


@pytest.mark.parametrize(
    ("query", "key", "source"),
    [
        ("dentist", "dentist", "directory"),
        ("Dentist", "dentist", "directory"),
        ("the dentist", "dentist", "directory"),  # an alias
        ("Bright Smile", "dentist", "directory"),  # part of its name
        ("bright smile dental", "dentist", "directory"),
        ("dentsit", "dentist", "directory"),  # a typo
        ("brigth smile", "dentist", "directory"),
        ("la piazza", "la_piazza", "directory"),
        ("La Piazza Trattoria", "la_piazza", "directory"),
        ("piazza", "la_piazza", "directory"),
        ("alice smith", "Alice Smith", "contact"),
        ("Smith", "Alice Smith", "contact"),
        ("zoe oneil", "Zoë O'Neil", "contact"),  # accents and punctuation
        ("ZOE O'NEIL", "Zoë O'Neil", "contact"),
        ("alise smith", "Alice Smith", "contact"),
    ],
)
def test_one_clear_winner(directory: object, query: str, key: str, source: str) -> None:
    found = resolve(query, contacts=PEOPLE, directory=directory, region="GB")  # type: ignore[arg-type]
    assert found.match is not None, found
    assert (found.match.key, found.match.source) == (key, source)
    assert not found.ambiguous


def test_an_ambiguous_name_returns_the_candidates(directory: object) -> None:
    found = resolve("alice", contacts=PEOPLE, directory=directory, region="GB")  # type: ignore[arg-type]
    assert found.match is None and found.ambiguous
    assert sorted(c.name for c in found.candidates) == ["Alice Jones", "Alice Smith"]


def test_nothing_close_is_no_match(directory: object) -> None:
    found = resolve("plumber", contacts=PEOPLE, directory=directory, region="GB")  # type: ignore[arg-type]
    assert found.match is None and found.candidates == () and not found.ambiguous


@pytest.mark.parametrize(
    ("query", "phone", "name"),
    [
        ("07700 900123", "+447700900123", "Alice Smith"),  # a contact's number, national form
        ("+44 20 7946 0999", "+442079460999", "+442079460999"),
        ("0044 20 7946 0999", "+442079460999", "+442079460999"),
        ("(202) 555-0199", "+442025550199", "+442025550199"),  # national numbers use the owner's region
    ],
)
def test_numbers_are_normalised_with_the_owners_region(directory: object, query: str, phone: str, name: str) -> None:
    found = resolve(query, contacts=PEOPLE, directory=directory, region="GB")  # type: ignore[arg-type]
    assert found.match is not None
    assert (found.match.source, found.match.phone, found.match.name) == ("number", phone, name)


def test_a_bad_number_is_an_error(directory: object) -> None:
    with pytest.raises(InvalidValue, match="'12345' is not a valid phone number"):
        resolve("12345", contacts=PEOPLE, directory=directory, region="GB")  # type: ignore[arg-type]


def test_a_contact_and_a_directory_entry_with_one_number_are_one_candidate(directory: object) -> None:
    mine = [Person(9, "Dentist Dave", "+442079460123")]  # the dentist's own number
    found = resolve("dentist", contacts=mine, directory=directory, region="GB")  # type: ignore[arg-type]
    assert found.match is not None and found.match.phone == "+442079460123"


def test_resolve_in_reads_contacts_from_the_store(store: Store, tars: Callable[..., Result]) -> None:
    assert tars("contacts", "add", "Bright Smile Kids", "+442079460777").exit_code == 0
    project = load_project(Path(store.root))
    with store.session() as session:
        assert resolve_in(session, project, "dentsit").match.key == "dentist"  # type: ignore[union-attr]
        kids = resolve_in(session, project, "bright smile kids").match
        assert kids is not None and (kids.source, kids.phone) == ("contact", "+442079460777")
        assert resolve_in(session, project, "bright smile").match.key == "dentist"  # type: ignore[union-attr]
        assert resolve_in(session, project, "bright").ambiguous  # the dentist, or the kids' one?
