"""The Grafana dashboard in docs/grafana/tars.json asks only for metrics `tars serve` exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tars import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "tars.json"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def exported() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        described = getattr(value, "describe", None)
        if callable(described) and getattr(value, "_name", "").startswith("tars_"):
            for family in described():
                names.add(family.name)
                names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_every_metric_the_dashboard_asks_for_is_exported_and_every_metric_is_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\btars_[a-z_]+", target["expr"])
    }
    known = exported()
    assert asked <= known, f"the dashboard asks for metrics TARS does not export: {sorted(asked - known)}"
    families = {n for n in known if not n.endswith(SUFFIXES)}
    shown = {n for n in families if any(a == n or a.startswith(n + "_") for a in asked)}
    assert shown == families, f"metrics no panel shows: {sorted(families - shown)}"
    assert all(p["gridPos"]["w"] <= 24 for p in dashboard["panels"])
