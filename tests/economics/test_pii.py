"""What counts as personal data, and what merely looks like it."""

from __future__ import annotations

import pytest

from meshgate.economics.pii import ENTITIES, find

ALL = frozenset(ENTITIES)


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to jane.doe+x@mail.example.co.uk today", "email", "jane.doe+x@mail.example.co.uk"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "iban", "DE89 3704 0044 0532 0130 00"),
        ("iban GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
        ("card 4111-1111-1111-1111 ok", "credit_card", "4111-1111-1111-1111"),
        ("card 5555555555554444", "credit_card", "5555555555554444"),
        ("call +49 30 1234567 now", "phone", "+49 30 1234567"),
        ("call 0171 2345678", "phone", "0171 2345678"),
        ("Steuer-ID 86095742719", "de_tax_id", "86095742719"),
        ("RVNR 65170839J003", "de_social_security", "65170839J003"),
    ],
)
def test_personal_data_is_found(text: str, entity: str, value: str) -> None:
    found = find(text, ALL)
    assert [(f.entity, f.value) for f in found] == [(entity, value)]
    assert text[found[0].start : found[0].end] == value


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112",  # fails Luhn
        "iban DE89370400440532013001",  # fails mod 97
        "id 86095742718",  # wrong tax id check digit
        "rvnr 65170839J004",  # wrong check digit
        "version 1.2.3 costs 1234 euros in 2026",
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert find(text, ALL) == []


def test_only_the_wanted_kinds_are_looked_for() -> None:
    text = "jane@example.com 4111 1111 1111 1111"
    assert [f.entity for f in find(text, frozenset({"credit_card"}))] == ["credit_card"]
