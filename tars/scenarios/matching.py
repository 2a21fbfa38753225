"""Matching what a scenario expects against what happened, and saying how they differ."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One expectation's verdict."""

    what: str
    passed: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "passed": self.passed, "detail": self.detail}


def describe_value(value: Any, limit: int = 160) -> str:
    """A compact one-line rendering of a value for reports."""
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mismatch(expected: Any, actual: Any, path: str = "") -> str | None:
    """Why ``actual`` does not hold ``expected`` (mappings: these keys at least), or None."""
    where = path or "the value"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{where}: expected a mapping, got {describe_value(actual)}"
        for key, want in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return f"{sub} is missing"
            problem = mismatch(want, actual[key], sub)
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list | tuple) or len(actual) != len(expected):
            return f"{where}: expected {describe_value(expected)}, got {describe_value(actual)}"
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            problem = mismatch(want, got, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if expected != actual:
        return f"{where} is {describe_value(actual)}, expected {describe_value(expected)}"
    return None


def contains(haystack: Any, needle: str) -> bool:
    return needle.casefold() in str(haystack or "").casefold()
