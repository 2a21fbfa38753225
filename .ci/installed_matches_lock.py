"""The environment running this holds exactly the versions constraints.txt pins for it.

Run by ``.ci/lock --check`` after the README's install: what CI tests is what the lock says.
"""

from __future__ import annotations

import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

OURS = {"tars-assistant", "pip", "setuptools", "wheel"}  # the project itself and the venv's own tools


def main(lock: Path) -> int:
    pinned: dict[str, str] = {}
    for raw in lock.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            pinned[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    problems = [
        f"{name}: locked {version}, installed {installed.get(name, 'nothing')}"
        for name, version in sorted(pinned.items())
        if installed.get(name) != version
    ]
    problems += [f"{name} {version} is installed but not locked" for name, version in sorted(installed.items())
                 if name not in pinned and name not in OURS]  # fmt: skip
    if problems:
        print(f"this environment is not what {lock} locks:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{len(pinned)} packages installed exactly as {lock} locks them")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
