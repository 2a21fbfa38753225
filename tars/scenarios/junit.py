"""JUnit XML for `tars test --junit FILE`: one ``<testsuite>`` per playbook, one ``<testcase>``
per scenario, a ``<failure>`` listing the expectations that failed, the call's transcript
in ``<system-out>``. CI systems (GitHub Actions, GitLab, Jenkins) read it as they read pytest's.
"""

from __future__ import annotations

import datetime as dt
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tars.scenarios.runner import ScenarioResult


def junit_xml(
    results: Mapping[str, Sequence[ScenarioResult]], problems: Mapping[str, str], seconds: float
) -> ET.ElementTree:
    """``results`` by playbook; ``problems``: playbooks that could not be tested, and why (errors)."""
    root = ET.Element("testsuites", name="tars test")
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for playbook in [*results, *(p for p in problems if p not in results)]:
        cases = results.get(playbook, ())
        failures = sum(1 for r in cases if r.status == "failed")
        errors = 1 if playbook in problems else 0
        suite = ET.SubElement(
            root,
            "testsuite",
            name=playbook,
            tests=str(len(cases) + errors),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
            time=f"{sum(r.seconds for r in cases):.3f}",
            timestamp=stamp,
            hostname=socket.gethostname(),
        )
        for result in cases:
            _case(suite, playbook, result)
        if errors:
            case = ET.SubElement(suite, "testcase", classname=f"playbooks.{playbook}", name="scenarios", time="0")
            ET.SubElement(case, "error", message=problems[playbook], type="NoScenarios").text = problems[playbook]
        totals["tests"] += len(cases) + errors
        totals["failures"] += failures
        totals["errors"] += errors
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def _case(suite: ET.Element, playbook: str, result: ScenarioResult) -> None:
    scenario = result.scenario
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"playbooks.{playbook}",
        name=scenario.name,
        file=scenario.file,
        time=f"{result.seconds:.3f}",
    )
    failed = result.failures
    if failed:
        message = f"{len(failed)} of {len(result.checks)} expectations failed: {failed[0].what}"
        lines = [f"✗ {c.what}" + (f": {c.detail}" if c.detail else "") for c in failed]
        ET.SubElement(case, "failure", message=message, type="ExpectationFailed").text = "\n".join(lines)
    transcript = [f"{e.speaker}: {e.text}" for e in result.transcript]
    checks = [f"{'✓' if c.passed else '✗'} {c.what}" for c in result.checks]
    ET.SubElement(case, "system-out").text = "\n".join([scenario.description, "", *transcript, "", *checks])


def write_junit(path: Path, tree: ET.ElementTree) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
