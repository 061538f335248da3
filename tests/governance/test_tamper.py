"""Tampering with stored rows, as someone with write access to the database would, is found.

Each test builds 12 records (signed checkpoints at 5 and 10), changes the SQL rows directly,
and expects ``verify`` to name the first record that no longer holds.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshgate.governance.audit import InvalidAuditRecord
from meshgate.governance.chain import checkpoint_payload, key_id_of, record_hash
from meshgate.governance.store import to_record
from tests.governance.conftest import Clock, Trail, open_trail


@pytest.fixture
async def chain(trail: Trail) -> Trail:
    await trail.add(12)
    return trail


async def bad(trail: Trail) -> dict[str, Any]:
    result = await trail.audit.verify()
    assert result["ok"] is False, result
    return result["first_bad"]


async def rehash_from(trail: Trail, first: int) -> None:
    """Recompute every hash from ``first`` on, and the head: a careful attacker's rewrite."""
    rows = await trail.sql.fetch_all("SELECT * FROM audit_records ORDER BY seq")
    prev = None
    for row in rows:
        rec = to_record(row)
        if rec["sequence"] >= first:
            rec["prev_hash"] = prev or rec["prev_hash"]
            rec["hash"] = record_hash(rec)
            await trail.sql.execute(
                "UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?",
                (rec["prev_hash"], rec["hash"], rec["sequence"]),
            )
        prev = rec["hash"]
    await trail.sql.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))


async def test_an_untouched_chain_verifies(chain: Trail) -> None:
    result = await chain.audit.verify()
    last = await chain.sql.fetch_one("SELECT hash FROM audit_records WHERE seq = 12")
    assert result["ok"] is True
    assert result["records"] == 12
    assert result["head"] == last["hash"]
    assert result["checkpoints"]["count"] == 2
    assert result["checkpoints"]["last"]["sequence"] == 10
    assert "first_bad" not in result


async def test_an_empty_chain_verifies(trail: Trail) -> None:
    result = await trail.audit.verify()
    assert result == {**result, "ok": True, "records": 0, "head": "0" * 64}


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "key_mallory"), ("details", '{"n":99}'), ("at", "2020-01-01T00:00:00.000000Z")],
)
async def test_editing_a_field_is_found_at_that_record(
    chain: Trail, column: str, value: str
) -> None:
    await chain.sql.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = 7", (value,))
    first = await bad(chain)
    assert first["sequence"] == 7
    assert "edited" in first["reason"]


async def test_editing_a_record_and_its_hash_breaks_the_next_link(chain: Trail) -> None:
    row = to_record(await chain.sql.fetch_one("SELECT * FROM audit_records WHERE seq = 7"))
    row["actor"] = "key_mallory"
    await chain.sql.execute(
        "UPDATE audit_records SET actor = ?, hash = ? WHERE seq = 7",
        (row["actor"], record_hash(row)),
    )
    first = await bad(chain)
    assert first == {"sequence": 8, "reason": first["reason"]}
    assert "prev_hash" in first["reason"]


async def test_rewriting_every_hash_after_an_edit_is_caught_by_the_signed_checkpoint(
    chain: Trail,
) -> None:
    await chain.sql.execute("UPDATE audit_records SET actor = 'key_mallory' WHERE seq = 7")
    await rehash_from(chain, 7)
    first = await bad(chain)
    # The chain links up again; only the signature at 10 vouches for 6..10.
    assert first["sequence"] == 6
    assert "rewritten" in first["reason"]


async def test_deleting_a_record_is_found(chain: Trail) -> None:
    await chain.sql.execute("DELETE FROM audit_records WHERE seq = 7")
    first = await bad(chain)
    assert first["sequence"] == 7
    assert "missing" in first["reason"]


async def test_deleting_a_record_and_renumbering_the_rest_is_found(chain: Trail) -> None:
    await chain.sql.execute("DELETE FROM audit_records WHERE seq = 7")
    for seq in range(8, 13):
        await chain.sql.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (seq - 1, seq))
    await chain.sql.execute("UPDATE audit_head SET seq = 11 WHERE id = 1")
    first = await bad(chain)
    assert first["sequence"] == 7


async def test_deleting_the_newest_records_is_found(chain: Trail) -> None:
    await chain.sql.execute("DELETE FROM audit_records WHERE seq >= 11")
    first = await bad(chain)
    assert first["sequence"] == 11
    assert "missing" in first["reason"]


async def test_reordering_two_records_is_found_at_the_first_moved(chain: Trail) -> None:
    await chain.sql.execute("UPDATE audit_records SET seq = -1 WHERE seq = 6")
    await chain.sql.execute("UPDATE audit_records SET seq = 6 WHERE seq = 7")
    await chain.sql.execute("UPDATE audit_records SET seq = 7 WHERE seq = -1")
    first = await bad(chain)
    assert first["sequence"] == 6


async def test_swapping_the_contents_of_two_records_is_found(chain: Trail) -> None:
    a = await chain.sql.fetch_one("SELECT * FROM audit_records WHERE seq = 3")
    b = await chain.sql.fetch_one("SELECT * FROM audit_records WHERE seq = 4")
    for row, seq in ((a, 4), (b, 3)):
        await chain.sql.execute(
            "UPDATE audit_records SET resource = ?, details = ?, at = ? WHERE seq = ?",
            (row["resource"], row["details"], row["at"], seq),
        )
    first = await bad(chain)
    assert first["sequence"] == 3


async def test_a_forged_checkpoint_signature_is_found(chain: Trail) -> None:
    forged = base64.b64encode(b"\x01" * 64).decode()
    await chain.sql.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = 5", (forged,))
    first = await bad(chain)
    assert first["sequence"] == 5
    assert "forged" in first["reason"]


async def test_a_checkpoint_signed_by_the_attackers_own_key_is_found(chain: Trail) -> None:
    """A full rewrite re-signed with another key: the verifier trusts only its own keys."""
    await chain.sql.execute("UPDATE audit_records SET actor = 'key_mallory' WHERE seq = 2")
    await rehash_from(chain, 2)
    mallory = Ed25519PrivateKey.generate()
    for cp in await chain.sql.fetch_all("SELECT * FROM audit_checkpoints"):
        seq = int(cp["seq"])
        rec = await chain.sql.fetch_one("SELECT hash FROM audit_records WHERE seq = ?", (seq,))
        payload = checkpoint_payload(seq, rec["hash"], cp["at"], int(cp["max_gap"]))
        await chain.sql.execute(
            "UPDATE audit_checkpoints SET hash = ?, key_id = ?, signature = ? WHERE seq = ?",
            (
                rec["hash"],
                key_id_of(mallory.public_key()),
                base64.b64encode(mallory.sign(payload)).decode(),
                cp["seq"],
            ),
        )
    first = await bad(chain)
    assert first["sequence"] == 5
    assert "unknown key" in first["reason"]


async def test_moving_a_signed_checkpoint_onto_a_rewritten_hash_is_found(chain: Trail) -> None:
    await chain.sql.execute("UPDATE audit_records SET actor = 'key_mallory' WHERE seq = 7")
    await rehash_from(chain, 7)
    head = await chain.sql.fetch_one("SELECT hash FROM audit_records WHERE seq = 10")
    await chain.sql.execute("UPDATE audit_checkpoints SET hash = ? WHERE seq = 10", (head["hash"],))
    first = await bad(chain)
    assert first["sequence"] == 10
    assert "forged" in first["reason"]


async def test_deleting_a_checkpoint_is_found(chain: Trail) -> None:
    await chain.sql.execute("DELETE FROM audit_checkpoints WHERE seq = 5")
    first = await bad(chain)
    assert first["sequence"] == 1
    assert "deleted" in first["reason"]


async def test_deleting_every_checkpoint_and_rewriting_is_found(chain: Trail) -> None:
    await chain.sql.execute("DELETE FROM audit_checkpoints")
    await chain.sql.execute("UPDATE audit_records SET actor = 'key_mallory' WHERE seq = 1")
    await rehash_from(chain, 1)
    await chain.sql.execute("UPDATE audit_head SET checkpoint_seq = 0 WHERE id = 1")
    first = await bad(chain)
    assert first["sequence"] == 1
    assert "checkpoint" in first["reason"]


async def test_the_chain_keeps_verifying_while_it_grows_past_checkpoints(chain: Trail) -> None:
    await chain.add(9)
    sealed = await chain.audit.checkpoint()
    assert sealed is not None and sealed["sequence"] == 21
    assert await chain.audit.checkpoint() is None  # already signed
    result = await chain.audit.verify()
    assert result["ok"] is True
    assert (result["records"], result["checkpoints"]["count"]) == (21, 5)


async def test_details_are_stored_as_given_and_secrets_never_are(trail: Trail) -> None:
    rec = await trail.audit.record(
        actor="key_alice",
        tenant="acme",
        action="subscription.created",
        resource="subscriptions/s1",
        details={"url": "https://hooks.example/x", "secret": "hunter2", "nested": {"token": "t"}},
    )
    row = await trail.sql.fetch_one("SELECT details FROM audit_records WHERE seq = 1")
    assert "hunter2" not in row["details"] and '"t"' not in row["details"]
    assert (
        orjson.loads(row["details"])
        == rec["details"]
        == {
            "url": "https://hooks.example/x",
            "secret": "[redacted]",
            "nested": {"token": "[redacted]"},
        }
    )
    assert (await trail.audit.verify())["ok"] is True


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("actor", "", "actor"),
        ("tenant", "x" * 300, "tenant"),
        ("resource", None, "resource"),
        ("details", ["not", "an", "object"], "details"),
        ("details", {"when": object()}, "JSON"),
        ("model_version", 2, "model_version"),
    ],
)
async def test_a_malformed_record_is_refused_and_nothing_is_appended(
    trail: Trail, field: str, value: Any, says: str
) -> None:
    await trail.add(2)
    fields: dict[str, Any] = {
        "actor": "key_alice",
        "tenant": "acme",
        "action": "thing.changed",
        "resource": "things/1",
        "details": {},
        field: value,
    }
    with pytest.raises(InvalidAuditRecord, match=says):
        await trail.audit.record(**fields)
    assert await trail.sequences() == [1, 2]
    assert (await trail.audit.verify())["ok"] is True


async def test_a_quiet_chain_is_signed_within_the_checkpoint_interval(
    sql_url: str, tmp_path: Path
) -> None:
    trail = await open_trail(
        sql_url, tmp_path, Clock(), checkpoint_every=1000, checkpoint_interval_seconds=0.05
    )
    await trail.audit.start()
    try:
        await trail.add(2)
        for _ in range(100):
            rows = await trail.sql.fetch_all("SELECT seq FROM audit_checkpoints")
            if rows:
                break
            await asyncio.sleep(0.02)
        assert [int(r["seq"]) for r in rows] == [2]
        result = await trail.audit.verify()
        assert result["ok"] is True and result["checkpoints"]["last"]["sequence"] == 2
    finally:
        await trail.audit.close()
        await trail.sql.close()
