"""The corpus of broken projects: what `tars validate` says about each, word for word.

Each folder under ``fixtures/`` is one mistake a person could make. The test copies the
shipped example project (``tars init``), applies the case, runs ``tars validate`` and
compares the output with ``expected.txt``. A case folder holds:

* ``case.yaml``  ``about`` (one line), and optionally ``edits`` (text replacements in the
  example's files: ``file``, ``old``, ``new``; ``old`` must occur exactly once),
  ``remove`` (files to delete), ``env`` (environment variables) and ``grow``
  (``file`` and ``bytes``: make a file that large, for size limits; not committed);
* ``files/``     files copied over the project as they are (bytes, for binary cases);
* ``expected.txt`` the exact output. Regenerate with ``pytest --update-goldens`` (or
  ``TARS_UPDATE_GOLDENS=1``), then read every changed line: it is what a person sees.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tars.scaffold import scaffold

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "case.yaml").is_file())


def build_case(name: str, root: Path) -> dict[str, Any]:
    """Scaffold the example into ``root`` and apply case ``name``; returns its case.yaml."""
    folder = FIXTURES / name
    case = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
    scaffold(root)
    for edit in case.get("edits", []):
        target = root / edit["file"]
        text = target.read_text(encoding="utf-8")
        count = text.count(edit["old"])
        assert count == 1, f"{name}: {edit['old']!r} occurs {count} times in {edit['file']}"
        target.write_text(text.replace(edit["old"], edit["new"]), encoding="utf-8")
    for rel in case.get("remove", []):
        (root / rel).unlink()
    overlay = folder / "files"
    if overlay.is_dir():
        for source in sorted(overlay.rglob("*")):
            if source.is_file():
                dest = root / source.relative_to(overlay)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
    if grow := case.get("grow"):
        line = b"# padding to make the file too large to be a settings file\n"
        with (root / grow["file"]).open("ab") as fh:
            fh.write(line * (grow["bytes"] // len(line) + 1))
    return case


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_invalid_project(name: str, tmp_path: Path, tars: Any, update_goldens: bool) -> None:
    root = tmp_path / "project"
    case = build_case(name, root)
    env = case.get("env", {})

    result = tars("--project", root, "validate", env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output

    golden = FIXTURES / name / "expected.txt"
    if update_goldens:
        golden.write_text(result.output, encoding="utf-8")
    assert golden.is_file(), f"no golden for {name}; run pytest --update-goldens"
    assert result.output == golden.read_text(encoding="utf-8")

    # The JSON output carries the same diagnostics as the text, in the same order.
    as_json = tars("--project", root, "validate", "--json", env=env)
    assert as_json.exit_code == 1
    found = json.loads(as_json.stdout)
    headlines = [_headline(d) for d in found]
    shown = [line for line in result.output.splitlines() if line in headlines]
    assert shown == headlines
    positions = [(d["file"], d["line"], d["col"]) for d in found]
    assert positions == sorted(positions)


def _headline(d: dict[str, Any]) -> str:
    where = f"{d['file']}:{d['line']}:{d['col']}" if d["line"] else d["file"]
    return f"{where}  {d['path']}  {d['message']}"
