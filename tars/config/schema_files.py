"""Where the JSON Schemas live, and reading them as plain data.

Kept apart from ``tars.config.schema`` (which imports jsonschema to validate) so that
applying schema defaults and finding secret paths — which a cached project load still
does — never pays for importing a validator.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_FILES = {
    "tars": "tars.schema.json",
    "persona": "persona.schema.json",
    "playbook": "playbook.schema.json",
    "scenario": "scenario.schema.json",
}


def schemas_dir() -> Path:
    """The folder holding the JSON Schemas: in the wheel, or the repository's ``schemas/``."""
    packaged = Path(__file__).resolve().parent.parent / "_project" / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "schemas"


@functools.cache
def load_schema(kind: str) -> dict[str, Any]:
    return json.loads((schemas_dir() / SCHEMA_FILES[kind]).read_text())
