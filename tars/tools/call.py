"""One tool call as the model asked for it: what the gate checks, the planner orders and the
tools run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for."""

    id: str
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
