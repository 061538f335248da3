"""Stored Responses, kept in the Context Mesh: one session per conversation.

A response id names its session (``resp_<token>_<session id>``), so a continuation finds its
history with one session read, tenant-scoped like every Context Mesh read (another tenant's
response is unknown). Each response adds its input messages and its reply as interactions,
tagged with its token and its parent's, so a conversation may also branch.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import orjson

from meshgate.errors import BackendUnavailable, MeshgateError, NotFound

if TYPE_CHECKING:
    from meshgate.context.service import ContextService

Json = dict[str, Any]
ROLES = {
    "developer": "system",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
HISTORY = 10_000


def split_id(response_id: str) -> tuple[str, str]:
    """(token, session id) of a stored response's id."""
    token, _, session_id = response_id.removeprefix("resp_").partition("_")
    if not response_id.startswith("resp_") or not session_id.startswith("ses_") or not token:
        raise NotFound(f"no response {response_id!r}", code="response_not_found")
    return token, session_id


class ResponseState:
    def __init__(self, context: ContextService | None):
        self.context = context

    def _mesh(self) -> ContextService:
        if self.context is None:
            raise BackendUnavailable("the Context Mesh is not started: responses cannot be kept")
        return self.context

    async def open(self, tenant: str, user_id: str | None, actor: str) -> str:
        session = await self._mesh().create_session(
            tenant,
            user_id or "responses-api",
            channel="api",
            ttl_seconds=None,
            state=None,
            actor=actor,
        )
        return session.session_id

    @staticmethod
    def new_id(session_id: str | None) -> str:
        token = secrets.token_hex(8)
        return f"resp_{token}_{session_id}" if session_id else f"resp_{token}"

    async def _turns(self, tenant: str, response_id: str) -> tuple[str, str, list[Any]]:
        token, session_id = split_id(response_id)
        try:
            turns = await self._mesh().interactions(tenant, session_id, HISTORY)
        except MeshgateError as exc:
            if exc.status == 404:
                raise NotFound(f"no response {response_id!r}", code="response_not_found") from exc
            raise
        return token, session_id, turns

    async def history(self, tenant: str, response_id: str) -> tuple[str, str, list[Json]]:
        """(session id, token, the chat messages up to and including that response)."""
        token, session_id, turns = await self._turns(tenant, response_id)
        by_token: dict[str, list[Any]] = {}
        for turn in turns:
            by_token.setdefault(str(turn.metadata.get("response")), []).append(turn)
        if token not in by_token:
            raise NotFound(f"no response {response_id!r}", code="response_not_found")
        chain: list[list[Any]] = []
        current: str | None = token
        while current is not None and current in by_token:
            chain.append(by_token[current])
            current = by_token[current][0].metadata.get("parent")
        messages = [orjson.loads(t.content) for group in reversed(chain) for t in group]
        return session_id, token, messages

    async def get(self, tenant: str, response_id: str) -> Json:
        token, _, turns = await self._turns(tenant, response_id)
        for turn in turns:
            if turn.metadata.get("response") == token and "object" in turn.metadata:
                found: Json = turn.metadata["object"]
                return found
        raise NotFound(f"no response {response_id!r}", code="response_not_found")

    async def save(
        self,
        tenant: str,
        response_id: str,
        parent: str | None,
        new: list[Json],
        reply: Json,
        response: Json,
    ) -> None:
        token, session_id = split_id(response_id)
        tags: Json = {"response": token, "parent": parent}
        turns = [
            (ROLES.get(m.get("role", ""), "user"), orjson.dumps(m).decode(), tags) for m in new
        ]
        turns.append(("assistant", orjson.dumps(reply).decode(), {**tags, "object": response}))
        await self._mesh().append_interactions(tenant=tenant, session_id=session_id, turns=turns)
