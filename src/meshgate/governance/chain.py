"""The hash chain: canonical form of a record, its hash, checkpoints, and the verifier.

Pure functions and a streaming verifier, no I/O, so the same code checks the live store and an
exported file. Outside the platform, a record verifies with any JSON library and SHA-256:

    hash = sha256(json({"sequence", "time", "actor", "tenant", "action", "resource",
                        "details", "model_version", "prev_hash"}))

where ``json`` sorts object keys at every level and writes no whitespace (UTF-8). The first
record's ``prev_hash`` is 64 zeros. A checkpoint is an Ed25519 signature over
``json({"kind": "meshgate.audit.checkpoint", "sequence", "hash", "time", "max_gap"})``: it
vouches that the chain up to ``sequence`` ends in ``hash``; ``max_gap`` is the most records the
writer lets pass between two checkpoints, so a deleted checkpoint is noticed too.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
CHECKPOINT_KIND = "meshgate.audit.checkpoint"


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical form of a record's fields (``hash`` itself excluded)."""
    body = {
        "sequence": record["sequence"],
        "time": record["time"],
        "actor": record["actor"],
        "tenant": record["tenant"],
        "action": record["action"],
        "resource": record["resource"],
        "details": record["details"],
        "model_version": record["model_version"],
        "prev_hash": record["prev_hash"],
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def checkpoint_payload(sequence: int, hash_: str, time: str, max_gap: int) -> bytes:
    return canonical(
        {
            "kind": CHECKPOINT_KIND,
            "sequence": sequence,
            "hash": hash_,
            "time": time,
            "max_gap": max_gap,
        }
    )


def key_id_of(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Problem:
    """The first place where the chain stops being trustworthy."""

    sequence: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "reason": self.reason}


class ChainVerifier:
    """Fed records and checkpoints in sequence order (a checkpoint after the record it covers).

    Stops at the first problem. ``retention_cutoff`` (an ISO time) is set when verifying the
    live store: a chain that starts after sequence 1 must start right after a signed checkpoint
    older than the cutoff, or records were removed while they still had to be kept.
    """

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        max_tail: int,
        retention_cutoff: str | None = None,
    ):
        self._keys = keys
        self._max_tail = max_tail
        self._cutoff = retention_cutoff
        self.problem: Problem | None = None
        self.records = 0
        self.checkpoints = 0
        self.first_sequence: int | None = None
        self.last_sequence = 0
        self.head = GENESIS
        self.last_checkpoint: dict[str, Any] | None = None
        self._started = False
        self._checkpoint_seq = 0
        self._last_gap = 0

    def _fail(self, sequence: int, reason: str) -> None:
        if self.problem is None:
            self.problem = Problem(sequence, reason)

    def record(self, rec: Mapping[str, Any]) -> None:
        if self.problem is not None:
            return
        seq = rec["sequence"]
        if not self._started:
            self._started = True
            if seq != 1:
                self._fail(
                    1,
                    f"records 1 to {seq - 1} are missing and no signed checkpoint "
                    "anchors the chain",
                )
                return
            self.first_sequence = 1
        expected = self.last_sequence + 1
        if seq > expected:
            self._fail(expected, f"record {expected} is missing (next stored is {seq})")
            return
        if seq < expected:
            self._fail(seq, "record is out of order")
            return
        if rec["prev_hash"] != self.head:
            self._fail(seq, f"prev_hash does not match the hash of record {seq - 1}")
            return
        if record_hash(rec) != rec["hash"]:
            self._fail(seq, "contents do not match the record's hash (edited)")
            return
        self.records += 1
        self.last_sequence = seq
        self.head = rec["hash"]

    def checkpoint(self, cp: Mapping[str, Any]) -> None:
        if self.problem is not None:
            return
        seq = cp["sequence"]
        if not self._signature_ok(cp):
            return
        if not self._started:
            self._anchor(cp)
            return
        if seq != self.last_sequence:
            self._fail(seq, f"checkpoint {seq} signs a record that is missing")
            return
        if cp["hash"] != self.head:
            self._fail(
                self._checkpoint_seq + 1,
                f"records {self._checkpoint_seq + 1} to {seq} were rewritten: checkpoint {seq} "
                "signs a different hash",
            )
            return
        if seq - self._checkpoint_seq > cp["max_gap"]:
            self._fail(
                self._checkpoint_seq + 1,
                f"a signed checkpoint between {self._checkpoint_seq} and {seq} was deleted",
            )
            return
        self._accept(cp)

    def _signature_ok(self, cp: Mapping[str, Any]) -> bool:
        seq = cp["sequence"]
        key = self._keys.get(cp["key_id"])
        if key is None:
            self._fail(seq, f"checkpoint {seq} is signed by an unknown key {cp['key_id']!r}")
            return False
        payload = checkpoint_payload(seq, cp["hash"], cp["time"], cp["max_gap"])
        try:
            key.verify(base64.b64decode(cp["signature"], validate=True), payload)
        except (InvalidSignature, ValueError):
            self._fail(seq, f"checkpoint {seq}: the signature does not verify (forged)")
            return False
        return True

    def _anchor(self, cp: Mapping[str, Any]) -> None:
        """The oldest kept checkpoint after pruning: the chain resumes from its hash."""
        self._started = True
        if self._cutoff is not None and cp["time"] >= self._cutoff:
            self._fail(
                cp["sequence"],
                f"records up to {cp['sequence']} were removed before their retention ended",
            )
            return
        self.first_sequence = cp["sequence"] + 1
        self.last_sequence = cp["sequence"]
        self.head = cp["hash"]
        self._accept(cp)

    def _accept(self, cp: Mapping[str, Any]) -> None:
        self.checkpoints += 1
        self._checkpoint_seq = cp["sequence"]
        # A smaller checkpoint_every set since this checkpoint must not flag the current tail.
        self._last_gap = cp["max_gap"]
        self.last_checkpoint = {"sequence": cp["sequence"], "hash": cp["hash"], "time": cp["time"]}

    def finish(self, head: Mapping[str, Any] | None) -> None:
        """``head`` is the writer's own note of the last sequence and hash, when known."""
        if self.problem is not None:
            return
        if head is not None and head["sequence"] != self.last_sequence:
            if head["sequence"] > self.last_sequence:
                self._fail(
                    self.last_sequence + 1,
                    f"records {self.last_sequence + 1} to {head['sequence']} are missing",
                )
            else:
                self._fail(head["sequence"] + 1, "records beyond the recorded head")
            return
        if head is not None and head["hash"] != self.head:
            self._fail(self.last_sequence, "the last record differs from the recorded head")
            return
        tail_limit = max(self._max_tail, self._last_gap)
        if head is not None and self.last_sequence - self._checkpoint_seq > tail_limit:
            self._fail(
                self._checkpoint_seq + 1,
                f"no signed checkpoint after {self._checkpoint_seq}: one was deleted",
            )

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.problem is None,
            "records": self.records,
            "head": self.head,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "checkpoints": {"count": self.checkpoints, "last": self.last_checkpoint},
        }
        if self.problem is not None:
            out["first_bad"] = self.problem.as_dict()
        return out
