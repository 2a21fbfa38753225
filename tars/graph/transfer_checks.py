"""The compiler's checks on ``transfer_call`` and the roles' ``transfer`` declarations.

A role that grants ``transfer_call`` says where its callers may be put through
(``roles.<role>.transfer.to``): ``owner``, a ``directory`` entry, or an E.164 number. The
checks refuse what could never work or must never happen: a target that is none of those,
a target that is TARS's own number (the caller would ring TARS again: a loop), unknown
callers being put through (``roles.unknown``), and a declaration the role cannot use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tars.config.diagnostics import JsonPath, suggestion

TOOL = "transfer_call"
OWNER_TARGET = "owner"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

#: How a problem is reported: the tars.yaml path, the sentence, the diagnostic code.
Report = Callable[[JsonPath, str, str], None]


def check_transfers(config: Mapping[str, Any], report: Report) -> None:
    roles = config.get("roles", {})
    directory = config.get("directory", {}) or {}
    ours = str((config.get("telephony") or {}).get("number") or "")
    owner_phone = str((config.get("owner") or {}).get("phone") or "")
    for role, entry in roles.items():
        tools = list(entry.get("tools", []))
        declared = entry.get("transfer")
        if TOOL in tools:
            at = ("roles", role, "tools", tools.index(TOOL))
            if role == "unknown":
                report(
                    at,
                    "unknown callers are never put through; remove transfer_call from roles.unknown.tools",
                    "ref.transfer",
                )
            elif declared is None:
                report(
                    at,
                    f"role '{role}' grants transfer_call but says nowhere to put callers through; "
                    f"add roles.{role}.transfer.to: the owner, directory entries or E.164 numbers",
                    "ref.transfer",
                )
        if declared is None:
            continue
        if TOOL not in tools:
            report(
                ("roles", role, "transfer"),
                f"roles.{role}.transfer is set but the role does not grant transfer_call; "
                f"add transfer_call to roles.{role}.tools or remove transfer",
                "ref.transfer",
            )
        for i, target in enumerate(declared.get("to", [])):
            where = ("roles", role, "transfer", "to", i)
            number = _number_of(str(target), directory, owner_phone)
            if number is None:
                hint = suggestion(str(target), [OWNER_TARGET, *directory])
                report(
                    where,
                    f"'{target}' is not a transfer target (owner, a directory entry or an E.164 number such as "
                    f"+447700900123){hint}",
                    "ref.transfer",
                )
            elif ours and number == ours:
                report(
                    where,
                    f"'{target}' is TARS's own number (telephony.number {ours}): the caller would ring TARS again; "
                    f"put them through to another number",
                    "ref.transfer_loop",
                )


def _number_of(target: str, directory: Mapping[str, Any], owner_phone: str) -> str | None:
    """The number a declared target dials, or None if it names nothing."""
    if target == OWNER_TARGET:
        return owner_phone or None
    if target in directory:
        return str((directory[target] or {}).get("phone") or "") or None
    return target if _E164.match(target) else None
