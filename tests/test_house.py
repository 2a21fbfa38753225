"""The house's rules that imports alone can break (see DESIGN.md "The house")."""

from __future__ import annotations

import ast
from pathlib import Path

import tars

TARS = Path(tars.__file__).parent
EMULATORS = TARS / "emulators"


def tars_imports(path: Path) -> list[tuple[int, str]]:
    """Every module of TARS that ``path`` imports, anywhere in it (function-level and
    ``TYPE_CHECKING`` imports too), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # a relative import stays inside its own package
        found += [(node.lineno, name) for name in names if name == "tars" or name.startswith("tars.")]
    return found


def test_the_emulators_are_a_leaf_that_imports_nothing_of_tars() -> None:
    """The loopback Twilio and Gemini could be their own package: they speak the wire
    protocols and know nothing of the assistant they are talking to."""
    modules = sorted(EMULATORS.rglob("*.py"))
    assert len(modules) > 20, f"expected the emulator modules under {EMULATORS}"
    outside = [
        f"{path.relative_to(TARS.parent)}:{line} imports {name}"
        for path in modules
        for line, name in tars_imports(path)
        if name != "tars.emulators" and not name.startswith("tars.emulators.")
    ]
    assert outside == [], "the emulators import TARS:\n" + "\n".join(outside)


def test_nothing_imports_the_old_sim_package() -> None:
    """tars/sim was split into tars/emulators and tars/scenarios, with no shim left behind."""
    assert not (TARS / "sim").exists()
    stale = [
        f"{path.relative_to(TARS.parent)}:{line} imports {name}"
        for path in sorted(TARS.rglob("*.py"))
        for line, name in tars_imports(path)
        if name == "tars.sim" or name.startswith("tars.sim.")
    ]
    assert stale == []
