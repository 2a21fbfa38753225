"""Phone numbers: every number TARS stores or dials is checked and written in E.164.

"07700 900123" with the owner's region GB becomes "+447700900123"; "+1 (555) 010-9999"
becomes "+15550109999". ``phonenumbers`` (Google's libphonenumber) does the work.
"""

from __future__ import annotations

import re

from tars.store.errors import InvalidValue

_NUMBERISH = re.compile(r"^\s*(?:\+|00)?[\d\s().\-/]{5,}(?:\s*(?:x|ext\.?)\s*\d+)?\s*$", re.IGNORECASE)


def looks_like_number(text: str) -> bool:
    """Digits, spaces, dashes, dots, brackets and an optional leading + (at least 5 digits)."""
    return bool(_NUMBERISH.match(text)) and sum(c.isdigit() for c in text) >= 5


def normalize_phone(text: str, region: str) -> str:
    """The E.164 form of ``text`` ("+447700900123"), reading national numbers in ``region``;
    raises InvalidValue for anything that is not a valid phone number."""
    import phonenumbers

    raw = text.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    hint = f"write it with its country code (e.g. +44 7700 900123) or as a {region} national number"
    try:
        number = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidValue(f"{text!r} is not a phone number", hint) from None
    # "Possible" (right length for its country) rather than "valid" (an allocated range):
    # reserved ranges for fiction and tests (07700 900xxx, 555-01xx) must work too.
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        why = {
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "no area code",
        }.get(reason, "wrong length")
        raise InvalidValue(f"{text!r} is not a valid phone number ({why}; read in region {region})", hint)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def pretty_phone(e164: str) -> str:
    """The international form people read: "+44 7700 900123"."""
    import phonenumbers

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
