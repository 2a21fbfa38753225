"""Who is "dentist"? A name, alias or number → one phone number, or the candidates.

``tars call dentist``, ``tars remind add --contact`` and the ``lookup_contact`` tool all
ask this. A name is matched against the owner's contacts and the ``directory`` in
tars.yaml (its key, its name and its aliases), forgiving case, accents, punctuation,
"the"/"my", word order, a missing word ("Bright Smile" for "Bright Smile Dental") and
typos ("dentsit"). One clear winner is returned with where it came from; when two are
about as good, all of the close ones are returned and nothing is chosen. Something that
looks like a phone number is normalised to E.164 with the owner's region instead.

    resolution = resolve("dentsit", contacts=contacts, directory=project.directory, region="GB")
    resolution.match        # Candidate(name='Bright Smile Dental', phone='+442079460123',
                            #           source='directory', key='dentist', ...)
    resolution.candidates   # every candidate worth showing, best first
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from tars.errors import UserError
from tars.store.phones import looks_like_number, normalize_phone

if TYPE_CHECKING:
    from tars.project import DirectoryEntry

Source = Literal["contact", "directory", "number"]

#: Scores are 0..1. Below ``THRESHOLD`` nothing is a candidate; a runner-up within
#: ``MARGIN`` of the best makes the name ambiguous.
THRESHOLD = 0.6
MARGIN = 0.05
#: At or above this a name is exact: the same words, up to case, accents, punctuation and
#: "the"/"my" ("the dentist" is exact for ``dentist``; "dentsit" and "dent" are not).
EXACT = 0.98
_STOP_WORDS = frozenset({"the", "my", "our", "a", "an"})


class Named(Protocol):
    """What resolve needs of a contact (``tars.store.models.Contact`` fits)."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def phone(self) -> str: ...


@dataclass(frozen=True)
class Candidate:
    name: str  # what to call it: the contact's name, the business's name
    phone: str  # E.164
    source: Source
    key: str  # the contact's name, the directory key, or the number
    score: float
    matched: str = ""  # the name or alias that matched
    contact_id: int | None = None

    @property
    def exact(self) -> bool:
        """A number, or a name or alias given as it is written: safe to dial without asking."""
        return self.source == "number" or self.score >= EXACT

    def describe(self) -> str:
        """``Bright Smile Dental (directory, +442079460123)``."""
        return f"{self.name} ({self.source}, {self.phone})"


@dataclass(frozen=True)
class Resolution:
    query: str
    match: Candidate | None
    candidates: tuple[Candidate, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.match is None and len(self.candidates) > 1

    @property
    def best(self) -> Candidate | None:
        """The one clear winner (the same as ``match``), or None."""
        return self.match


# --------------------------------------------------------------------------- matching


def normalize(text: str) -> str:
    """Casefolded, accents removed, punctuation and underscores as spaces.

    "Zoë_O'Neil" → "zoe o neil"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("&", " and "))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", plain).split())


def _tokens(text: str) -> list[str]:
    words = normalize(text).split()
    kept = [w for w in words if w not in _STOP_WORDS]
    return kept or words


def similarity(query: str, name: str) -> float:
    """How well ``query`` names ``name``, 0..1: 1 exact, ~0.97 same words, ~0.9 some of its
    words, ~0.8 word prefixes, ~0.7 words with typos, 0 unrelated."""
    q, n = normalize(query), normalize(name)
    if not q or not n:
        return 0.0
    if q == n:
        return 1.0
    qt, nt = _tokens(query), _tokens(name)
    if qt == nt:
        return 0.98
    if "".join(qt) == "".join(nt) or sorted(qt) == sorted(nt):
        return 0.96
    best = 0.0
    name_words = set(nt)
    if set(qt) <= name_words:
        best = max(best, 0.85 + 0.1 * len(set(qt)) / len(name_words))
    if all(any(w.startswith(t) for w in nt) for t in qt if len(t) >= 3) and all(len(t) >= 3 for t in qt):
        best = max(best, 0.75 + 0.05 * sum(len(t) for t in qt) / sum(len(w) for w in nt))
    closeness = [max(_word_similarity(t, w) for w in nt) for t in qt]
    if closeness and min(closeness) >= 0.7:
        best = max(best, 0.62 + 0.12 * sum(closeness) / len(closeness) * min(1.0, len(qt) / len(nt)) ** 0.5)
    return round(best, 4)


def _word_similarity(a: str, b: str) -> float:
    """1 - edits/length, with a swap of two neighbouring letters counted as one edit."""
    if a == b:
        return 1.0
    if min(len(a), len(b)) < 4:
        return 0.0
    return 1.0 - _edits(a, b) / max(len(a), len(b))


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


# --------------------------------------------------------------------------- resolving


def resolve(
    query: str,
    *,
    contacts: Iterable[Named] = (),
    directory: Mapping[str, DirectoryEntry] | None = None,
    region: str = "US",
) -> Resolution:
    """The one number ``query`` means, or the candidates if it could mean several.

    Raises ``tars.store.errors.InvalidValue`` for something that looks like a phone number
    but is not a valid one.
    """
    contacts = list(contacts)
    if looks_like_number(query):
        phone = normalize_phone(query, region)
        known = next((c for c in contacts if c.phone == phone), None)
        listed = next((e for e in (directory or {}).values() if e.phone == phone), None)
        name = known.name if known else (listed.name or listed.key) if listed else phone
        found = Candidate(name, phone, "number", phone, 1.0, query.strip(), known.id if known else None)
        return Resolution(query, found, (found,))
    ranked = rank(query, contacts=contacts, directory=directory)
    if not ranked:
        return Resolution(query, None, ())
    top = ranked[0]
    close = tuple(c for c in ranked if c.score >= top.score - MARGIN)
    if len(close) > 1:
        return Resolution(query, None, close)
    return Resolution(query, top, tuple(ranked))


def rank(
    query: str,
    *,
    contacts: Iterable[Named] = (),
    directory: Mapping[str, DirectoryEntry] | None = None,
    threshold: float = THRESHOLD,
) -> list[Candidate]:
    """Every contact and directory entry scoring at least ``threshold``, best first; one
    candidate per phone number (a contact wins over a directory entry with its number)."""
    found: list[Candidate] = []
    for contact in contacts:
        score = similarity(query, contact.name)
        if score >= threshold:
            found.append(
                Candidate(
                    contact.name,
                    contact.phone,
                    "contact",
                    contact.name,
                    score,
                    contact.name,
                    contact.id,
                )
            )
    for key, entry in (directory or {}).items():
        names = [key, *([entry.name] if entry.name else []), *entry.aliases]
        score, matched = max((similarity(query, n), n) for n in names)
        if score >= threshold:
            found.append(Candidate(entry.name or key, entry.phone, "directory", key, score, matched))
    found.sort(key=lambda c: (-c.score, c.source != "contact", c.name.casefold()))
    seen: set[str] = set()
    unique = []
    for candidate in found:
        if candidate.phone not in seen:
            seen.add(candidate.phone)
            unique.append(candidate)
    return unique


def choose(
    found: Resolution,
    *,
    ask: Callable[[Resolution], Candidate | None] | None = None,
    accept_best: bool = False,
) -> Candidate:
    """The candidate to dial for ``found``, deliberately: an exact name, alias or number is
    taken as it is; a fuzzy match is taken when ``accept_best`` (``--yes``) or when ``ask``
    (a person at a terminal) confirms it; an ambiguous name only when ``ask`` picks one.
    Raises UserError listing the candidates otherwise (nothing is dialled)."""
    best = found.best
    if best is not None and best.exact:
        return best
    if best is not None and accept_best:
        return best
    if best is None and not found.candidates:
        raise UserError(
            f"nobody called '{found.query}' in your contacts or the directory",
            "add them with `tars contacts add NAME PHONE`, or give the number (+44…)",
        )
    if ask is not None:
        chosen = ask(found)
        if chosen is not None:
            return chosen
        raise UserError(f"nothing was dialled: '{found.query}' was not confirmed")
    shown = (best, *(c for c in found.candidates if c != best)) if best else found.candidates
    names = "; ".join(c.describe() for c in shown[:6] if c is not None)
    if best is None:
        raise UserError(f"'{found.query}' could mean several: {names}", "be more specific, or give the number")
    raise UserError(
        f"'{found.query}' is not an exact name, alias or number; the closest: {names}",
        f"give the exact name or the number, or add --yes to call {best.name}",
    )
