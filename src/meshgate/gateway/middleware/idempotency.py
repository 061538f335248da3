"""``Idempotency-Key`` on POST: a retry gets the first answer and nothing happens twice.

A client that got no answer (or a 503) cannot know whether its write happened; it retries
with the same ``Idempotency-Key`` header. The first request with a key claims it in the SQL
store (a unique row, so the claim holds across every node), runs, and its answer is kept for
``TTL_SECONDS``. A retry with the same key, from the same API key:

- after a final answer (2xx, 4xx): the same status, headers and body, plus
  ``Idempotent-Replayed: true``; the route does not run again;
- while the first is still running: 409 with ``Retry-After``;
- with a different method, path or body: 422, since the key names another request.

An answer of 5xx is not kept: it means the write did not happen, so a retry runs afresh.
A claim whose request never finished (its node died) is taken over after ``STALE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.auth import Principal
from meshgate.core import scope as request_scope
from meshgate.errors import BadRequest, Conflict, MeshgateError, ValidationFailed
from meshgate.gateway.problems import send_error
from meshgate.sql import Migration, SqlStore

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
TTL_SECONDS = 24 * 3600.0
STALE_SECONDS = 120.0
MAX_KEPT_BODY = 1024 * 1024
# Headers of the first answer that a replay repeats; the rest are per response.
KEPT_HEADERS = (b"content-type", b"location", b"etag", b"x-model-version", b"x-prediction-id")

MIGRATIONS = [
    Migration(
        "idempotency",
        1,
        "CREATE TABLE IF NOT EXISTS idempotency_keys ("
        " tenant TEXT NOT NULL, key_id TEXT NOT NULL, idem_key TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, status INTEGER, headers TEXT, body {blob},"
        " created_at REAL NOT NULL, PRIMARY KEY (tenant, key_id, idem_key))",
    ),
    # PostgreSQL's REAL (4 bytes) holds epoch seconds only to about two minutes, coarser than
    # STALE_SECONDS: a running request's claim could read as stale. Rebuilt with 8 bytes.
    Migration(
        "idempotency",
        2,
        "CREATE TABLE idempotency_keys_v2 ("
        " tenant TEXT NOT NULL, key_id TEXT NOT NULL, idem_key TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, status INTEGER, headers TEXT, body {blob},"
        " created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (tenant, key_id, idem_key));"
        " INSERT INTO idempotency_keys_v2 SELECT tenant, key_id, idem_key, fingerprint,"
        " status, headers, body, created_at FROM idempotency_keys;"
        " DROP TABLE idempotency_keys;"
        " ALTER TABLE idempotency_keys_v2 RENAME TO idempotency_keys",
    ),
]

PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: a repeat with the same key (same API key, method, "
    "path and body) within 24 h returns the first answer (with Idempotent-Replayed: true) "
    "and does nothing twice, on any node. 409 while the first is still running; 422 when "
    "the key was used for another request. A 5xx answer is not kept.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, sql: SqlStore):
        self.app = app
        self.sql = sql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == HEADER), None)
        principal: Principal | None = request_scope.principal(scope)
        if raw is None or principal is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._once(scope, receive, send, principal, _check_key(raw))
        except MeshgateError as exc:
            await send_error(exc, scope, send)

    async def _once(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, key: str
    ) -> None:
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            b"\0".join((scope["path"].encode(), scope.get("query_string", b""), body))
        ).hexdigest()
        ident = (principal.tenant, principal.key_id, key)
        if not await self._claim(ident, fingerprint):
            await self._replay(ident, fingerprint, scope, send)
            return
        answer = _Recorder(send)
        try:
            await self.app(scope, _replaying(body, receive), answer.send)
        except BaseException:
            await self._release(ident)
            raise
        if answer.keep():
            await self.sql.execute(
                "UPDATE idempotency_keys SET status = ?, headers = ?, body = ?"
                " WHERE tenant = ? AND key_id = ? AND idem_key = ?",
                (answer.status, answer.headers_json(), answer.body(), *ident),
            )
        else:
            await self._release(ident)

    async def _claim(self, ident: tuple[str, str, str], fingerprint: str) -> bool:
        """Insert the claim; False when the key is already taken (by any node)."""
        now = time.time()
        # Forget answers past their time, and claims whose node never finished them.
        await self.sql.execute(
            "DELETE FROM idempotency_keys WHERE tenant = ? AND key_id = ? AND idem_key = ?"
            " AND (created_at < ? OR (status IS NULL AND created_at < ?))",
            (*ident, now - TTL_SECONDS, now - STALE_SECONDS),
        )
        try:
            await self.sql.execute(
                "INSERT INTO idempotency_keys (tenant, key_id, idem_key, fingerprint,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (*ident, fingerprint, now),
            )
        except Conflict:
            return False
        return True

    async def _release(self, ident: tuple[str, str, str]) -> None:
        await self.sql.execute(
            "DELETE FROM idempotency_keys WHERE tenant = ? AND key_id = ? AND idem_key = ?",
            ident,
        )

    async def _replay(
        self, ident: tuple[str, str, str], fingerprint: str, scope: Scope, send: Send
    ) -> None:
        row = await self.sql.fetch_one(
            "SELECT fingerprint, status, headers, body FROM idempotency_keys"
            " WHERE tenant = ? AND key_id = ? AND idem_key = ?",
            ident,
        )
        if row is None:  # released between our insert and this read: the client may retry
            raise Conflict("the first request with this Idempotency-Key just failed; retry")
        if row["fingerprint"] != fingerprint:
            raise ValidationFailed(
                "this Idempotency-Key was used for another request (path or body differ)",
                field="Idempotency-Key",
            )
        if row["status"] is None:
            raise Conflict(
                "a request with this Idempotency-Key is still running; retry later",
                headers={"Retry-After": "1"},
            )
        headers = [(k.encode(), v.encode()) for k, v in orjson.loads(row["headers"])]
        body = bytes(row["body"])
        headers += [
            (b"content-length", str(len(body)).encode()),
            (b"idempotent-replayed", b"true"),
        ]
        await send({"type": "http.response.start", "status": row["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Recorder:
    """Passes the answer through and keeps a copy of it."""

    def __init__(self, send: Send):
        self._send = send
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in message.get("headers", ())
                if k.lower() in KEPT_HEADERS
            ]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self._size += len(chunk)
            if self._size <= MAX_KEPT_BODY:
                self._chunks.append(chunk)
            self._complete = not message.get("more_body", False)
        await self._send(message)

    def keep(self) -> bool:
        return self._complete and 0 < self.status < 500 and self._size <= MAX_KEPT_BODY

    def headers_json(self) -> str:
        return orjson.dumps(self.headers).decode()

    def body(self) -> bytes:
        return b"".join(self._chunks)


def _check_key(raw: bytes) -> str:
    try:
        key = raw.decode("ascii")
    except UnicodeDecodeError:
        key = ""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            field="Idempotency-Key",
        )
    return key


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def document(app: FastAPI) -> None:
    """Declare the header on every POST operation of the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for operations in schema.get("paths", {}).values():
            post = operations.get("post")
            if post is None:
                continue
            parameters = post.setdefault("parameters", [])
            if any(p.get("name") == PARAMETER["name"] for p in parameters):
                continue
            parameters.append(PARAMETER)
            responses = post.setdefault("responses", {})
            responses.setdefault(
                "409", {"description": "A request with this Idempotency-Key is still running."}
            )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
