"""The JSON Schemas: valid, documented, wired to the example files, in step with the code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tars.config.schema import schemas_dir
from tars.scaffold import example_project
from tars.tools.catalog import BUILTINS

EXAMPLE = example_project()
SCHEMAS = sorted(schemas_dir().glob("*.schema.json"))
EXAMPLE_FILES = {
    "tars.yaml": "tars.schema.json",
    **{f"personas/{p.name}": "persona.schema.json" for p in (EXAMPLE / "personas").glob("*.yaml")},
    **{f"playbooks/{p.name}": "playbook.schema.json" for p in (EXAMPLE / "playbooks").glob("*.yaml")},
}
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(?P<path>\S+)$")

# Keywords whose value is one schema, a list of schemas, or a mapping of name -> schema.
_ONE = (
    "additionalProperties",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_NAMED = ("$defs", "definitions", "properties", "patternProperties", "dependentSchemas")


def _subschemas(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside ``schema`` (not values such as ``default`` or ``enum``)."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for key in _ONE:
        yield from _subschemas(schema.get(key), f"{where}/{key}")
    for key in _MANY:
        for i, sub in enumerate(schema.get(key, [])):
            yield from _subschemas(sub, f"{where}/{key}/{i}")
    for key in _NAMED:
        for name, sub in schema.get(key, {}).items():
            yield from _subschemas(sub, f"{where}/{key}/{name}")


def test_the_three_schemas_exist() -> None:
    names = {p.name for p in SCHEMAS}
    assert {"tars.schema.json", "persona.schema.json", "playbook.schema.json"} <= names


@pytest.mark.parametrize("schema_file", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(schema_file: Path) -> None:
    schema = json.loads(schema_file.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + schema_file.name)
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("schema_file", SCHEMAS, ids=lambda p: p.name)
def test_every_property_is_described(schema_file: Path) -> None:
    """Editors show these descriptions on hover: every setting explains itself."""
    schema = json.loads(schema_file.read_text())
    missing = [
        f"{where}/properties/{name}"
        for where, sub in _subschemas(schema, "#")
        for name, prop in sub.get("properties", {}).items()
        if not (isinstance(prop, dict) and str(prop.get("description", "")).strip())
    ]
    assert missing == []


@pytest.mark.parametrize("schema_file", SCHEMAS, ids=lambda p: p.name)
def test_every_local_ref_resolves(schema_file: Path) -> None:
    schema = json.loads(schema_file.read_text())
    for where, sub in _subschemas(schema, "#"):
        ref = sub.get("$ref")
        if not isinstance(ref, str):
            continue
        target_file, _, pointer = ref.partition("#")
        document = json.loads((schemas_dir() / target_file).read_text()) if target_file else schema
        node: Any = document
        for part in filter(None, pointer.split("/")):
            assert isinstance(node, dict) and part in node, f"{schema_file.name} {where}: {ref}"
            node = node[part]


@pytest.mark.parametrize("rel", sorted(EXAMPLE_FILES))
def test_example_file_points_at_its_schema(rel: str) -> None:
    """The first line lets editors (the YAML language server) check and complete the file."""
    path = EXAMPLE / rel
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = MODELINE.match(first)
    assert match, f"{rel} should start with '# yaml-language-server: $schema=...'"
    target = (path.parent / match["path"]).resolve()
    assert target.is_file(), f"{rel}: {match['path']} does not exist"
    assert target == (EXAMPLE / "schemas" / EXAMPLE_FILES[rel]).resolve()


def test_builtin_tools_match_the_schema() -> None:
    schema = json.loads((schemas_dir() / "tars.schema.json").read_text())
    builtin = schema["properties"]["tools"]["properties"]["builtin"]["properties"]
    assert sorted(builtin) == sorted(BUILTINS)


@pytest.mark.parametrize(
    ("schema", "path", "message"),
    [
        (
            {"type": "strng"},
            ("type",),
            "'strng' is not one of: array, boolean, integer, null, number, object, string; did you mean 'string'?",
        ),
        ({"type": "object", "required": "channel"}, ("required",), "expected a list, got 'channel'"),
        ({"properties": {"a": {"enum": "x"}}}, ("properties", "a", "enum"), "expected a list, got 'x'"),
    ],
)
def test_json_schema_problems_in_user_schemas(schema: dict[str, Any], path: tuple[str, ...], message: str) -> None:
    from tars.config.schema import json_schema_problems

    assert json_schema_problems(schema) == [(path, message)]
    assert json_schema_problems({"type": "object", "properties": {"a": {"type": "string"}}}) == []
