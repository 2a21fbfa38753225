"""``tars init``: a new project from the shipped example, without overwriting anything."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

GITIGNORE = """\
# TARS state (database, logs, recordings) and local secrets
.tars/
.env
"""

ENV_EXAMPLE = """\
# Copy to .env (git-ignored) and fill in. Values here override nothing in the environment.
TWILIO_ACCOUNT_SID=
TWILIO_AUTH_TOKEN=
GEMINI_API_KEY=
TARS_PUBLIC_URL=https://tars.example.com
TARS_OWNER_PIN=
"""


def example_project() -> Path:
    """The example project: packaged in the wheel, or the repository root in a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_project"
    return packaged if (packaged / "tars.yaml").is_file() else here.parent


@dataclass
class ScaffoldReport:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OwnerDetails:
    name: str | None = None
    phone: str | None = None
    timezone: str | None = None
    email: str | None = None
    region: str | None = None


def _files(source: Path) -> Iterator[tuple[Path, str]]:
    yield source / "tars.yaml", "tars.yaml"
    for folder in ("personas", "playbooks", "schemas"):
        for path in sorted((source / folder).glob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml", ".json"):
                yield path, f"{folder}/{path.name}"
    # Each playbook's scenarios (`tars test`): playbooks/scenarios/<playbook>/<scenario>.yaml
    for path in sorted((source / "playbooks" / "scenarios").glob("*/*")):
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            yield path, path.relative_to(source).as_posix()


def scaffold(target: Path, owner: OwnerDetails | None = None) -> ScaffoldReport:
    """Copy the example into ``target``; existing files are kept as they are."""
    report = ScaffoldReport()
    target.mkdir(parents=True, exist_ok=True)
    source = example_project()
    for path, rel in _files(source):
        dest = target / rel
        if dest.exists():
            report.kept.append(rel)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        report.created.append(rel)
        if rel == "tars.yaml" and owner:
            set_owner(dest, owner)
    for rel, text in ((".gitignore", GITIGNORE), (".env.example", ENV_EXAMPLE)):
        dest = target / rel
        if dest.exists():
            report.kept.append(rel)
        else:
            dest.write_text(text)
            report.created.append(rel)
    return report


def set_owner(config: Path, owner: OwnerDetails) -> None:
    """Write owner details into tars.yaml, keeping its comments and layout (ruamel round-trip)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-flow the user's long lines
    yaml.indent(mapping=2, sequence=4, offset=2)  # the example's layout: "  - item" under its key
    data = yaml.load(config.read_text())
    section = data["owner"]
    if owner.name:
        section["name"] = owner.name
    if owner.phone:
        section["phone"] = DoubleQuotedScalarString(owner.phone)
    if owner.timezone:
        section["timezone"] = owner.timezone
    if owner.email:
        section["email"] = owner.email
    elif (owner.name or owner.phone) and "email" in section:
        del section["email"]  # the example's address is not the new owner's
    if owner.region:
        section["region"] = owner.region
    with config.open("w") as fh:
        yaml.dump(data, fh)
