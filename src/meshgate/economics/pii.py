"""Personal data in text: e-mail addresses, phone numbers, IBANs, payment cards, German tax
ids and German social security numbers.

Patterns find candidates; a checksum confirms the ones that carry one (IBAN mod 97, Luhn for
cards, ISO 7064 mod 11,10 for the tax id, the pension insurance check digit), so an order
number that merely looks like a card is left alone. Names are not detected: no library does
that offline without a model download, and a guess would redact ordinary words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

ENTITIES = ("email", "phone", "iban", "credit_card", "de_tax_id", "de_social_security")


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str
    start: int
    end: int
    value: str


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def luhn_ok(candidate: str) -> bool:
    digits = _digits(candidate)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def de_tax_id_ok(candidate: str) -> bool:
    """Steuerliche Identifikationsnummer: 11 digits, no leading zero, ISO 7064 mod 11,10."""
    digits = _digits(candidate)
    if len(digits) != 11 or digits[0] == "0":
        return False
    product = 10
    for c in digits[:10]:
        total = (int(c) + product) % 10 or 10
        product = total * 2 % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


_SSN_WEIGHTS = (2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1)


def de_social_security_ok(candidate: str) -> bool:
    """Rentenversicherungsnummer: area, birth date, initial, serial, check digit."""
    compact = candidate.replace(" ", "").upper()
    if len(compact) != 12 or not compact[8].isalpha():
        return False
    day, month = int(compact[2:4]), int(compact[4:6])
    if not (1 <= day <= 31 or 51 <= day <= 81) or not 1 <= month <= 12:
        return False
    digits = compact[:8] + f"{ord(compact[8]) - 64:02d}" + compact[9:11]
    total = sum(sum(divmod(int(d) * w, 10)) for d, w in zip(digits, _SSN_WEIGHTS, strict=True))
    return total % 10 == int(compact[11])


def _always(_: str) -> bool:
    return True


# Most specific first: a span taken by an earlier entity is not looked at again.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}[ ./-]?(?:\(0\)[ ]?)?\d{2,5}(?:[ ./-]?\d{2,8}){1,4}(?!\w)"
    r"|(?<![\w+])0\d{2,5}[ /-]?\d{3,9}(?:[ -]?\d{2,5})?(?!\w)"
)
_RULES: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("email", EMAIL, _always),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), iban_ok),
    ("de_social_security", re.compile(r"\b\d{2} ?\d{6} ?[A-Za-z] ?\d{3}\b"), de_social_security_ok),
    ("credit_card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), luhn_ok),
    ("de_tax_id", re.compile(r"(?<!\d)\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)"), de_tax_id_ok),
    ("phone", PHONE, _always),
)  # fmt: skip


def find(text: str, entities: frozenset[str]) -> list[Finding]:
    """Every personal datum of the wanted kinds, in text order, without overlaps."""
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []
    for entity, pattern, confirm in _RULES:
        if entity not in entities:
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken) or not confirm(match.group()):
                continue
            taken.append((start, end))
            found.append(Finding(entity, start, end, match.group()))
    found.sort(key=lambda f: f.start)
    return found
