"""Who spoke on a call, named the same way in every view (`tars calls show`, the live view of
`tars call`, `tars simulate`, `tars call --simulate`): TARS by its persona's name, the other
party by the name TARS knows them by (the contact, or the business a goal call rang), else
``caller`` when they rang TARS and ``callee`` when TARS rang them."""

from __future__ import annotations

#: How transcripts store who spoke: the recorder's speakers and the simulator's.
TARS_SPEAKERS = ("assistant", "tars")
PARTY_SPEAKERS = ("caller", "party")


def other_party(name: str | None, *, outbound: bool) -> str:
    return name or ("callee" if outbound else "caller")


def speaker_name(speaker: str, persona: str, party: str) -> str:
    """The label for ``speaker`` (a stored transcript speaker) in any view of the call."""
    if speaker in TARS_SPEAKERS:
        return persona
    if speaker in PARTY_SPEAKERS:
        return party
    return speaker  # system, tool
