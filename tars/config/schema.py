"""JSON Schema validation that speaks in file:line:col and says how to fix things.

jsonschema finds the errors; this module turns each into one Diagnostic a person can act
on: unknown keys with "did you mean", enum values with the allowed list, the schema's own
``x-message`` wording where a bare pattern would be cryptic, and for ``oneOf``/``anyOf``
the most relevant branch's error rather than a wall of alternatives.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tars.config.diagnostics import Diagnostic, did_you_mean, suggestion
from tars.config.schema_files import SCHEMA_FILES, load_schema, schemas_dir
from tars.config.secrets import FromEnv

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.exceptions import ValidationError

    from tars.config.yaml_loader import Document

__all__ = ["SCHEMA_FILES", "load_schema", "schemas_dir", "validate_document", "validate_value"]

# jsonschema (Python) is imported only to explain an invalid document (or to check a value
# at run time): a valid project is answered by jsonschema-rs alone (see ``_fast_validator``).


def _is_timezone(value: object) -> bool:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        return False
    ZoneInfo(value)
    return True


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/]+", value))


@functools.cache
def _formats() -> FormatChecker:
    from jsonschema import FormatChecker

    formats = FormatChecker()
    formats.checks("timezone", raises=(ZoneInfoNotFoundError, ValueError))(_is_timezone)
    formats.checks("uri")(_is_uri)
    return formats


def _secret_keyword(
    validator: Any, write_only: bool, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """``writeOnly: true`` marks a secret: it must come from ``${VAR}``, never be written in YAML."""
    from jsonschema.exceptions import ValidationError

    if write_only and isinstance(instance, str) and instance and not isinstance(instance, FromEnv):
        yield ValidationError("a secret is written here in plain text")


@functools.cache
def _tars_validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    return validators.extend(Draft202012Validator, {"writeOnly": _secret_keyword})


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource

    resources = []
    for file in SCHEMA_FILES.values():
        path = schemas_dir() / file
        if path.is_file():
            contents = json.loads(path.read_text())
            resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@functools.cache
def validator_for(kind: str) -> Any:
    return _tars_validator()(load_schema(kind), registry=_registry(), format_checker=_formats())


# The plain-text strings of the document being checked by jsonschema-rs (see _FastSecret).
_plain_strings: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("plain_strings")


class _FastSecret:
    """``writeOnly`` for jsonschema-rs, which sees every string as plain ``str`` (a ``FromEnv``
    from ``${VAR}`` is given to it as its text). A secret fails when its text is written in
    plain text somewhere in the document: never missed, and on the rare false alarm (a
    ``${VAR}`` whose value is also written out elsewhere) the Python validator decides."""

    def __init__(self, parent_schema: Any, value: Any, schema_path: Any):
        self.on = bool(value)

    def validate(self, instance: Any) -> None:
        if self.on and isinstance(instance, str) and instance and instance in _plain_strings.get():
            raise ValueError("a secret is written here in plain text")


@functools.cache
def _fast_validator(kind: str) -> Any:
    """jsonschema-rs (Rust) for the common case, a valid document: ~100x faster, and no
    import of jsonschema (Python).

    It only answers valid/invalid; the messages come from the Python validator, which
    runs only when this one says a document is invalid. ``writeOnly`` (secrets) is a
    keyword of ours in both (``_FastSecret`` here, ``_secret_keyword`` there).
    """
    import jsonschema_rs

    return jsonschema_rs.validator_for(
        load_schema(kind),
        registry=_fast_registry(),
        formats={"timezone": _is_tz_name, "uri": _is_uri},
        validate_formats=True,
        keywords={"writeOnly": _FastSecret},
    )


@functools.cache
def _fast_registry() -> Any:
    import jsonschema_rs

    return jsonschema_rs.Registry(
        [(load_schema(k)["$id"], load_schema(k)) for k in SCHEMA_FILES if (schemas_dir() / SCHEMA_FILES[k]).is_file()]
    )


def _fast_valid(data: Any, kind: str) -> bool:
    """True if jsonschema-rs finds ``data`` valid (with every ``${VAR}`` value as its text)."""
    plain: set[str] = set()
    copy = _as_json(data, plain)
    token = _plain_strings.set(frozenset(plain))
    try:
        return bool(_fast_validator(kind).is_valid(copy))
    finally:
        _plain_strings.reset(token)


def _as_json(value: Any, plain: set[str]) -> Any:
    """``value`` as plain JSON types for jsonschema-rs (it refuses ``str`` subclasses such as
    ``FromEnv``); every string written in plain text is added to ``plain``."""
    if isinstance(value, dict):
        return {k: _as_json(v, plain) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v, plain) for v in value]
    if isinstance(value, FromEnv):
        return str.__str__(value)
    if isinstance(value, str):
        plain.add(value)
    return value


def _is_tz_name(value: str) -> bool:
    try:
        return _is_timezone(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False


def validate_document(doc: Document, kind: str) -> list[Diagnostic]:
    """Every schema error in ``doc`` as diagnostics, one per distinct problem."""
    if _fast_valid(doc.data, kind):
        return []
    validator = validator_for(kind)
    errors = [_pick(error) for error in validator.iter_errors(doc.data)]
    # "unknown key 'telefony'; did you mean 'telephony'?" already says 'telephony' is missing.
    misspelt = {
        (tuple(e.absolute_path), did_you_mean(key, e.schema.get("properties", {})))
        for e in errors
        if e.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(e.instance, dict)
        for key in e.instance
        if key not in e.schema.get("properties", {})
    }
    out: list[Diagnostic] = []
    judged: set[tuple[str | int, ...]] = set()
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator == "required":
            if (path, _missing_key(error)) in misspelt:
                continue
        elif error.validator not in ("additionalProperties", "unevaluatedProperties"):
            # One verdict per value: a bad URL need not also be told it fails the pattern.
            if path in judged:
                continue
            judged.add(path)
        out.extend(_diagnose(doc, error))
    return out


def _missing_key(error: ValidationError) -> str:
    missing = re.findall(r"'([^']+)' is a required property", error.message)
    return missing[0] if missing else error.message


def validate_value(value: Any, schema: dict[str, Any]) -> list[str]:
    """Plain messages for a value checked against a schema (tool arguments, outcomes)."""
    from jsonschema.exceptions import relevance

    validator = _tars_validator()(schema, registry=_registry(), format_checker=_formats())
    messages = []
    for error in sorted(validator.iter_errors(value), key=relevance):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        messages.append(f"{path.lstrip('.') or 'value'}: {_message(_pick(error))}")
    return messages


def json_schema_problems(schema: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Why ``schema`` is not valid JSON Schema (Draft 2020-12): (path inside it, message).

    For schemas people write in YAML (a playbook's outcome, a webhook's parameters):
    ``'strng' is not one of: array, boolean, …; did you mean 'string'?`` rather than
    jsonschema's "is not valid under any of the given schemas".
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import relevance

    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    problems = []
    for error in sorted(meta.iter_errors(schema), key=relevance):
        picked = _pick(error)
        problems.append((tuple(picked.absolute_path), _message(picked)))
    return problems


def _pick(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, descend to the most relevant branch's error."""
    from jsonschema.exceptions import best_match

    while error.validator in ("oneOf", "anyOf") and error.context:
        # A branch that rejects the value's very type is not the one the user meant.
        mistyped = {e.relative_schema_path[0] for e in error.context if _wrong_type(e)}
        meant = [e for e in error.context if e.relative_schema_path[0] not in mistyped]
        if not meant:
            break  # an object where a scalar goes (or vice versa): say which forms are allowed
        error = best_match(meant)
    return error


def _wrong_type(error: ValidationError) -> bool:
    return error.validator == "type" and not error.relative_path


def _diagnose(doc: Document, error: ValidationError) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    keyword = error.validator
    if isinstance(error.schema, dict) and error.schema.get("writeOnly") is True:
        return [doc.diagnostic(path, _secret_message(error, path), code="schema.secret")]
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        pattern = error.schema.get("additionalProperties")
        extras = [k for k in error.instance if k not in allowed]
        return [
            doc.diagnostic(
                (*path, key),
                f"unknown key '{key}'"
                + (
                    suggestion(key, allowed)
                    or (f"; expected one of: {', '.join(allowed)}" if allowed and len(allowed) <= 12 else "")
                ),
                key=True,
                code="schema.unknown_key",
            )
            for key in extras
            if pattern is False
        ] or [doc.diagnostic(path, _message(error), code="schema")]
    if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
        return [
            doc.diagnostic(
                (*path, error.instance),
                f"'{error.instance}' is not a valid name: use lower_snake_case "
                "(letters, digits and underscores, starting with a letter)",
                key=True,
                code="schema.key",
            )
        ]
    if keyword == "required":
        name = _missing_key(error)
        return [doc.diagnostic(path, f"missing required key '{name}'", code="schema.required")]
    return [doc.diagnostic(path, _message(error), code=f"schema.{keyword}")]


def _secret_message(error: ValidationError, path: tuple[str | int, ...]) -> str:
    """A secret's problem, never quoting its value (the output may end up in a CI log)."""
    name = "_".join(str(p) for p in path[-2:]).upper().replace("-", "_") or "MY_SECRET"
    fix = f"write ${{{name}}} here and put the value in the environment or .env beside tars.yaml"
    if error.validator == "writeOnly":
        return f"a secret is written here in plain text; secrets never live in YAML: {fix}"
    return f"a secret must be a ${{VAR}} reference, not {_TYPE_NAMES.get(_json_type(error.instance), 'this')}: {fix}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else "string"


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (empty)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    return repr(value)


def _message(error: ValidationError) -> str:
    """One readable sentence for a schema error."""
    custom = error.schema.get("x-message", {}) if isinstance(error.schema, dict) else {}
    keyword, value, expected = error.validator, error.instance, error.validator_value
    if isinstance(value, FromEnv) and keyword != "writeOnly":
        shown = "the value of " + ", ".join(f"${{{v}}}" for v in value.variables)
    else:
        shown = _describe(value)
    if keyword in custom:
        return f"{shown} {custom[keyword]}"
    if keyword == "writeOnly":
        return error.message
    if keyword == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        return f"expected {names}, got {_describe(value)}"
    if keyword == "enum":
        choices = ", ".join(str(c) for c in expected)
        return f"{shown} is not one of: {choices}{suggestion(value, [str(c) for c in expected])}"
    if keyword == "const":
        return f"must be {expected!r}, got {shown}"
    if keyword == "pattern":
        return f"{shown} does not match the pattern {expected}"
    if keyword == "format":
        return f"{shown} is not a valid {expected}"
    if keyword in ("minimum", "exclusiveMinimum"):
        op = ">=" if keyword == "minimum" else ">"
        return f"{shown} is too small; must be {op} {expected}"
    if keyword in ("maximum", "exclusiveMaximum"):
        op = "<=" if keyword == "maximum" else "<"
        return f"{shown} is too large; must be {op} {expected}"
    if keyword == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if keyword == "minItems":
        return "must not be an empty list" if expected == 1 else f"needs at least {expected} items"
    if keyword == "uniqueItems":
        return "lists the same item more than once"
    if keyword == "minProperties":
        return "must not be empty"
    if keyword in ("oneOf", "anyOf"):
        wanted: list[str] = []
        for branch in error.context or []:
            if _wrong_type(branch):
                types = branch.validator_value if isinstance(branch.validator_value, list) else [branch.validator_value]
                wanted += [_TYPE_NAMES.get(t, t) for t in types if _TYPE_NAMES.get(t, t) not in wanted]
        if wanted:
            either = ", ".join(wanted[:-1]) + " or " + wanted[-1] if len(wanted) > 1 else wanted[0]
            return f"expected {either}, got {_describe(value)}"
        return f"{shown} does not match any of the allowed forms"
    if keyword == "required":
        return error.message
    return error.message
