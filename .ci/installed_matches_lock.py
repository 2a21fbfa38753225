"""The environment running this holds exactly the versions constraints.txt pins for it.

Run by ``.ci/lock --check`` after the README's install: what CI tests is what the lock says.

The lock pins every extra, but an install holds only some: what ``tars-assistant[test]`` needs
(CI's install), plus any other extra whose requirements are all installed (someone who added
``local-embeddings``), must be there at the locked version; a locked package nothing installed
needs (the extra left out) may be missing, but if it is there its version must be the locked one.
A local build label counts as the version it builds (torch 2.13.0+cpu is 2.13.0).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

OURS = {"tars-assistant", "pip", "setuptools", "wheel"}  # the project itself and the venv's own tools
ALWAYS = {"test"}  # the extra CI installs


def _requirements(name: str, extras: set[str]) -> list[Requirement]:
    """The installed ``name``'s requirements that hold with these extras (none if not installed)."""
    try:
        raw = distribution(name).requires or []
    except PackageNotFoundError:
        return []
    out = []
    for line in raw:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *extras}):
            out.append(requirement)
    return out


def needed(installed: dict[str, str]) -> set[str]:
    """Every package the installed extras of tars-assistant reach, by canonical name."""
    ours = distribution("tars-assistant").metadata.get_all("Provides-Extra") or []
    extras = set(ALWAYS)
    for extra in ours:
        direct = [r for r in _requirements("tars-assistant", {extra}) if r.marker and not r.marker.evaluate()]
        if direct and all(canonicalize_name(r.name) in installed for r in direct):
            extras.add(extra)
    seen: dict[str, set[str]] = {}
    todo: list[tuple[str, set[str]]] = [("tars-assistant", extras)]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in seen and wanted <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | wanted
        todo.extend((r.name, set(r.extras)) for r in _requirements(name, seen[key]))
    return set(seen)


def main(lock: Path) -> int:
    pinned: dict[str, str] = {}
    for raw in lock.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            pinned[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version).public for d in distributions()}
    wanted = needed(installed)
    problems = [
        f"{name}: locked {version}, installed {installed.get(name, 'nothing')}"
        for name, version in sorted(pinned.items())
        if installed.get(name) != version and (name in wanted or (name in installed and name not in OURS))
    ]
    problems += [f"{name} {version} is installed but not locked" for name, version in sorted(installed.items())
                 if name not in pinned and name not in OURS]  # fmt: skip
    if problems:
        print(f"this environment is not what {lock} locks:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{len(wanted & pinned.keys())} packages installed exactly as {lock} locks them")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
