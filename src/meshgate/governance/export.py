"""Export a stretch of the chain as JSON lines that anyone verifies with the public key alone.

The stretch is widened to checkpoint boundaries: it starts right after the last signed
checkpoint before ``since`` (included as the anchor line) and ends at the first checkpoint at or
after ``until`` when one exists, so every exported record is covered by a signature. Lines:

    {"kind": "header", "format": "meshgate-audit/1", ...}
    {"kind": "checkpoint", "sequence", "hash", "time", "max_gap", "key_id", "signature"}
    {"kind": "record", "sequence", "time", "actor", ..., "prev_hash", "hash"}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meshgate.governance.audit import AuditService, iso, utcnow
from meshgate.governance.chain import ChainVerifier
from meshgate.governance.signing import public_b64

FORMAT = "meshgate-audit/1"
RECORD_FIELDS = (
    "sequence",
    "time",
    "actor",
    "tenant",
    "action",
    "resource",
    "details",
    "model_version",
    "prev_hash",
    "hash",
)
CHECKPOINT_FIELDS = ("sequence", "hash", "time", "max_gap", "key_id", "signature")


class ExportFormatError(ValueError):
    """The file is not an audit export."""


async def _bounds(audit: AuditService, since: str | None, until: str | None) -> tuple[int, int]:
    """First and last sequence of the records whose time falls in [since, until)."""
    head = (await audit.store.head())["sequence"]
    first, last = 1, head
    if since is not None:
        rows = await audit.store.query_times(at_or_after=since)
        first = rows if rows is not None else head + 1
    if until is not None:
        rows = await audit.store.query_times(before=until)
        last = rows if rows is not None else 0
    return first, last


async def export_jsonl(
    audit: AuditService, out: IO[bytes], *, since: str | None = None, until: str | None = None
) -> dict[str, int]:
    """Write the export to ``out``; returns counts of records and checkpoints written."""
    first, last = await _bounds(audit, since, until)
    checkpoints = await audit.store.checkpoints() if first <= last else []
    before = [c for c in checkpoints if c["sequence"] < first]
    anchor = before[-1] if before else None
    start = anchor["sequence"] + 1 if anchor else 1
    closing = next((c for c in checkpoints if c["sequence"] >= last), None)
    end = closing["sequence"] if closing is not None and last >= start else last
    if first > last:  # nothing in the window: a header alone
        start, end = first, last
    header = {
        "kind": "header",
        "format": FORMAT,
        "since": since,
        "until": until,
        "exported_at": iso(utcnow()),
        "first_sequence": start,
        "last_sequence": end,
        "public_keys": {kid: public_b64(k) for kid, k in audit.signer.keys.items()},
    }
    out.write(orjson.dumps(header) + b"\n")
    counts = {"records": 0, "checkpoints": 0}
    if anchor is not None:
        _write(out, "checkpoint", anchor, CHECKPOINT_FIELDS)
        counts["checkpoints"] += 1
    inside = iter([c for c in checkpoints if start <= c["sequence"] <= end])
    pending = next(inside, None)
    async for page in audit.store.scan(start, end):
        for rec in page:
            _write(out, "record", rec, RECORD_FIELDS)
            counts["records"] += 1
            while pending is not None and pending["sequence"] <= rec["sequence"]:
                _write(out, "checkpoint", pending, CHECKPOINT_FIELDS)
                counts["checkpoints"] += 1
                pending = next(inside, None)
    return counts


def _write(out: IO[bytes], kind: str, item: Mapping[str, Any], fields: tuple[str, ...]) -> None:
    out.write(orjson.dumps({"kind": kind, **{f: item[f] for f in fields}}) + b"\n")


def read_lines(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ExportFormatError(f"line {number}: not JSON") from exc
        if not isinstance(item, dict) or item.get("kind") not in ("header", "record", "checkpoint"):
            raise ExportFormatError(f"line {number}: not an audit export line")
        yield item


def verify_export(lines: Iterable[bytes], keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    """Verify an export against trusted public keys (never the keys written in the file)."""
    items = read_lines(lines)
    header = next(items, None)
    if header is None or header["kind"] != "header" or header.get("format") != FORMAT:
        raise ExportFormatError(f"not a {FORMAT} export: the first line must be its header")
    verifier = ChainVerifier(keys, max_tail=2**62)
    try:
        for item in items:
            if item["kind"] == "record":
                verifier.record(item)
            elif item["kind"] == "checkpoint":
                verifier.checkpoint(item)
            if verifier.problem is not None:
                break
    except (KeyError, TypeError) as exc:
        raise ExportFormatError(f"malformed line: missing or wrong field {exc}") from exc
    verifier.finish(None)
    result = verifier.result()
    signed = (result["checkpoints"]["last"] or {}).get("sequence", 0)
    # Records after the last checkpoint are chained but not yet signed: say how many.
    result["unsigned_tail"] = max(0, verifier.last_sequence - max(signed, 0))
    return result
