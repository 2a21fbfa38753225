"""The persona's language in what TARS says: the name of the language for the system
instruction, and the words for the part of the day that greetings use.

A table rather than a locale library: CLDR (Babel) names day periods ("in the morning",
"at night") but not the salutations people greet with ("Guten Tag", "Buenas tardes",
"Bonsoir"), and a greeting is what ``{{ salutation }}`` must give. Languages not in the
table greet in English words and are still spoken: the instruction names the language tag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    name: str  # in English, for the system instruction
    parts: tuple[str, str, str]  # morning, afternoon, evening: {{ time_of_day }}
    salutations: tuple[str, str, str]  # the greeting for each: {{ salutation }}


LANGUAGES: dict[str, Language] = {
    "en": Language("English", ("morning", "afternoon", "evening"), ("Good morning", "Good afternoon", "Good evening")),
    "de": Language("German", ("Morgen", "Tag", "Abend"), ("Guten Morgen", "Guten Tag", "Guten Abend")),
    "fr": Language("French", ("matin", "après-midi", "soir"), ("Bonjour", "Bonjour", "Bonsoir")),
    "es": Language("Spanish", ("mañana", "tarde", "noche"), ("Buenos días", "Buenas tardes", "Buenas noches")),
    "it": Language("Italian", ("mattina", "pomeriggio", "sera"), ("Buongiorno", "Buon pomeriggio", "Buonasera")),
    "pt": Language("Portuguese", ("manhã", "tarde", "noite"), ("Bom dia", "Boa tarde", "Boa noite")),
    "nl": Language("Dutch", ("ochtend", "middag", "avond"), ("Goedemorgen", "Goedemiddag", "Goedenavond")),
    "sv": Language("Swedish", ("morgon", "eftermiddag", "kväll"), ("God morgon", "God eftermiddag", "God kväll")),
    "da": Language("Danish", ("morgen", "eftermiddag", "aften"), ("Godmorgen", "God eftermiddag", "Godaften")),
    "nb": Language("Norwegian", ("morgen", "ettermiddag", "kveld"), ("God morgen", "God ettermiddag", "God kveld")),
    "pl": Language("Polish", ("rano", "popołudnie", "wieczór"), ("Dzień dobry", "Dzień dobry", "Dobry wieczór")),
}
_REGIONS = {
    "GB": "British",
    "US": "American",
    "AU": "Australian",
    "IN": "Indian",
    "IE": "Irish",
    "CA": "Canadian",
    "NZ": "New Zealand",
    "DE": "",
    "AT": "Austrian",
    "CH": "Swiss",
    "FR": "",
    "BE": "Belgian",
    "ES": "",
    "MX": "Mexican",
    "BR": "Brazilian",
    "PT": "European",
}


def language_of(tag: str) -> Language:
    """The table entry for a BCP 47 tag (``en-GB`` → English); English for one not in it."""
    base = tag.split("-")[0].lower()
    return LANGUAGES.get("nb" if base == "no" else base, LANGUAGES["en"])


def described(tag: str) -> str:
    """The language in words for the instruction: ``British English (en-GB)``; the tag alone
    for a language TARS has no name for."""
    base, _, region = tag.partition("-")
    entry = LANGUAGES.get("nb" if base.lower() == "no" else base.lower())
    if entry is None:
        return f"the language with the tag {tag}"
    flavour = _REGIONS.get(region.upper(), "")
    return f"{flavour + ' ' if flavour else ''}{entry.name} ({tag})"


def part_of_day(now: dt.datetime) -> int:
    """0 morning 05:00-12:00, 1 afternoon 12:00-18:00, 2 evening otherwise — the small hours
    included: "Good evening" at 01:00, never "Good afternoon" (nor "Good night", a farewell)."""
    hour = now.hour
    if 5 <= hour < 12:
        return 0
    if 12 <= hour < 18:
        return 1
    return 2
