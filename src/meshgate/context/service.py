"""The Context Mesh's public face: ``platform.context``.

Reads go through a bounded in-process cache (see :mod:`meshgate.context.cache`); every write
goes to the store first, then invalidates the entry here and, through the bus, in every other
process. ``resolve`` and ``append_interactions`` are the inference path's entry points.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from meshgate.context.base import ContextStore
from meshgate.context.cache import MISSING, ContextCache, Key
from meshgate.context.config import ContextConfig
from meshgate.context.handle import HandleSigner
from meshgate.context.invalidation import InvalidationBus
from meshgate.context.mergepatch import apply_patch, check_patch, merge
from meshgate.context.model import (
    CHANNELS,
    ROLES,
    ContextNotFound,
    Interaction,
    InvalidContext,
    Json,
    Session,
    SessionView,
    StaleVersion,
    UserProfile,
    check_id,
    iso,
)
from meshgate.context.notify import Notifier
from meshgate.context.policies import PolicyBook
from meshgate.context.policy import CompiledPolicy, PolicyCompiler
from meshgate.context.ports import ErasureListener, RegisteredPolicies
from meshgate.errors import Conflict

log = logging.getLogger("meshgate.context")
PURGE_EVERY_SECONDS = 60.0
CAS_ATTEMPTS = 16
WRITE_LOCKS = 64
Turn = tuple[str, str, Json | None]


def etag(version: int) -> str:
    return f'"{version}"'


def matches(if_match: str, current: UserProfile | None) -> bool:
    """RFC 9110 If-Match with strong comparison: ``*`` or one of the listed ETags."""
    if current is None:
        return False
    tags = [t.strip() for t in if_match.split(",")]
    return "*" in tags or etag(current.version) in tags


class ContextService:
    def __init__(
        self,
        store: ContextStore,
        config: ContextConfig,
        *,
        signer: HandleSigner,
        cache: ContextCache,
        bus: InvalidationBus,
        notifier: Notifier,
        registered: RegisteredPolicies,
        clock: Callable[[], float] = time.time,
        erasure: Sequence[ErasureListener] = (),
    ):
        self.store = store
        self.config = config
        self.signer = signer
        self.cache = cache
        self.bus = bus
        self.notify = notifier
        self.clock = clock
        self.erasure = list(erasure)
        """Other domains told of each erasure (spend, budgets, cached answers)."""
        self.compiler = PolicyCompiler(config.history_limit)
        self._write_locks = [asyncio.Lock() for _ in range(WRITE_LOCKS)]
        self.policies = PolicyBook(
            store, self.compiler, config.policies, self.cache, self.bus, registered
        )
        self._purger: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self.bus.start()
        self._purger = asyncio.create_task(self._purge(), name="context-purge")

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.bus.close()
        await self.store.close()

    async def _purge(self) -> None:
        """Expired sessions leave the disk too, not just the API."""
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            try:
                await self.store.purge_expired()
            except Exception as exc:
                log.warning("purging expired sessions failed: %s", exc)

    # --- cache plumbing ----------------------------------------------------------------------

    async def _changed(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self.cache.invalidate(key)
            await self.bus.publish(key)

    def _live(self, view: SessionView | None) -> SessionView | None:
        if view is not None and view.session.expires_at <= self.clock():
            return None
        return view

    async def _read(
        self, tenant: str, user_id: str | None, session_id: str | None, *, last: int = 0
    ) -> tuple[UserProfile | None, SessionView | None]:
        """Profile and session with its ``last`` newest interactions: from the cache, or else
        one store read. A cached session remembers how many interactions were asked for, so
        the hot path reads only what its policies need, never the whole history."""
        ukey, skey = (tenant, "u", user_id or ""), (tenant, "s", session_id or "")
        user = self.cache.get(ukey) if user_id else None
        view: Any = None
        if session_id:
            entry = self.cache.get(skey)
            if entry is not MISSING and entry is not None:
                cached_view, fetched = entry
                # enough in hand, or everything there is (fewer came back than were asked for)
                if fetched >= last or len(cached_view.interactions) < fetched:
                    view = cached_view
                else:
                    view = MISSING
            else:
                view = None if entry is None else MISSING
        want_user = user_id if user is MISSING else None
        want_session = session_id if view is MISSING else None
        if want_user or want_session:
            epoch = self.cache.epoch
            got_user, got_view = await self.store.get_context(
                tenant, want_user, want_session, last=last
            )
            if want_user:
                user = got_user
                self.cache.fill(ukey, user, epoch)
            if want_session:
                view = got_view
                self.cache.fill(skey, (view, last) if view is not None else None, epoch)
        return user, self._live(view)

    # --- users ----------------------------------------------------------------------------

    async def get_user(self, tenant: str, user_id: str) -> UserProfile:
        user, _ = await self._read(tenant, check_id("user_id", user_id), None)
        if user is None:
            raise ContextNotFound(f"no context for user {user_id!r}")
        return user

    async def patch_user(
        self, tenant: str, user_id: str, patch: Any, *, if_match: str | None, actor: str
    ) -> tuple[UserProfile, bool]:
        """Apply a merge patch; returns the new profile and whether it was created."""
        check_id("user_id", user_id)
        check_patch(patch)
        # Writers of one user in this process take turns; the store's compare-and-set settles
        # races with other processes.
        async with self._write_locks[hash((tenant, user_id)) % WRITE_LOCKS]:
            profile, created = await self._patch(tenant, user_id, patch, if_match)
        if created is None:
            return profile, False
        await self._changed([(tenant, "u", user_id)])
        changed = sorted(
            f"{s}.{k}" for s in ("attributes", "preferences") for k in patch.get(s) or {}
        )
        ref = self.notify.user_ref(tenant, user_id)
        await self.notify.updated(
            tenant, user_id, {"what": "profile", "version": profile.version, "changed": changed}
        )
        await self.notify.record(
            actor=actor,
            tenant=tenant,
            action="context.user.patched",
            resource=f"context/users/{ref}",
            details={"version": profile.version, "changed": changed},
        )
        return profile, created

    async def _patch(
        self, tenant: str, user_id: str, patch: Json, if_match: str | None
    ) -> tuple[UserProfile, bool | None]:
        """Read, merge, compare-and-set. "Created" is None when the patch changed nothing."""
        for attempt in range(CAS_ATTEMPTS):
            current = await self.store.get_user(tenant, user_id)
            if if_match is not None and not matches(if_match, current):
                raise StaleVersion(
                    f"If-Match {if_match} does not match the current version "
                    f"{etag(current.version) if current else '(none: the user does not exist)'}",
                )
            attrs, prefs = apply_patch(
                current.attributes if current else {},
                current.preferences if current else {},
                patch,
                self.config,
            )
            if current is None and not (attrs or prefs):
                raise ContextNotFound(
                    f"no context for user {user_id!r}, and an empty patch creates nothing"
                )
            if current is not None and (attrs, prefs) == (current.attributes, current.preferences):
                return current, None
            version = (current.version if current else 0) + 1
            profile = UserProfile(user_id, attrs, prefs, version, self.clock())
            if await self.store.put_user(tenant, profile):
                return profile, current is None
            if if_match is not None:
                raise StaleVersion("the user was changed by another request; read it again")
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # another process won
        raise Conflict("the user is being changed by too many requests at once; retry")

    # --- sessions and interactions --------------------------------------------------------------

    def _check_json(self, value: Any, what: str, limit: int) -> Json:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InvalidContext(f"'{what}' must be a JSON object", param=what)
        size = len(orjson.dumps(value))
        if size > limit:
            raise InvalidContext(
                f"'{what}' is {size} bytes as JSON; the limit is {limit}", param=what
            )
        return value

    async def create_session(
        self,
        tenant: str,
        user_id: str,
        *,
        channel: str,
        ttl_seconds: int | None,
        state: Json | None,
        actor: str,
    ) -> Session:
        check_id("user_id", user_id)
        if channel not in CHANNELS:
            raise InvalidContext(f"channel must be one of {', '.join(CHANNELS)}", param="channel")
        ttl = self.config.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        if not 1 <= ttl <= self.config.max_ttl_seconds:
            raise InvalidContext(
                f"ttl_seconds must be between 1 and {self.config.max_ttl_seconds}",
                param="ttl_seconds",
            )
        state = self._check_json(state, "state", self.config.max_state_bytes)
        now = self.clock()
        session = Session(
            "ses_" + secrets.token_urlsafe(18), user_id, channel, ttl, state, now, now + ttl
        )
        await self.store.create_session(tenant, session)
        await self.notify.updated(
            tenant, user_id, {"what": "session", "session_id": session.session_id}
        )
        await self.notify.record(
            actor=actor,
            tenant=tenant,
            action="context.session.created",
            resource=f"context/sessions/{session.session_id}",
            details={"channel": channel},
        )
        return session

    async def patch_session(
        self, tenant: str, session_id: str, patch: Any, *, actor: str
    ) -> SessionView:
        """Merge-patch (RFC 7396) the state of a live session: ``{"state": {...}}``."""
        check_id("session_id", session_id)
        if not isinstance(patch, dict) or set(patch) - {"state"}:
            raise InvalidContext(
                "a session patch is a JSON object whose only member is 'state'", param="body"
            )
        if patch.get("state") is not None and not isinstance(patch["state"], dict):
            raise InvalidContext("'state' must be an object or null", param="state")
        async with self._write_locks[hash((tenant, session_id)) % WRITE_LOCKS]:
            view = await self.store.get_session(tenant, session_id)
            if view is None:
                raise ContextNotFound(f"no session {session_id!r} (unknown or expired)")
            state = merge(view.session.state, patch["state"]) if "state" in patch else {}
            state = self._check_json(state or {}, "state", self.config.max_state_bytes)
            if not await self.store.put_session_state(tenant, session_id, state):
                raise ContextNotFound(f"no session {session_id!r} (unknown or expired)")
        await self._changed([(tenant, "s", session_id)])
        await self.notify.session_updated(tenant, session_id, {"what": "session.state"})
        await self.notify.record(
            actor=actor,
            tenant=tenant,
            action="context.session.patched",
            resource=f"context/sessions/{session_id}",
            details={"changed": sorted(patch.get("state") or {})},
        )
        return await self.get_session(tenant, session_id)

    async def get_session(self, tenant: str, session_id: str) -> SessionView:
        _, view = await self._read(
            tenant, None, check_id("session_id", session_id), last=self.config.history_limit
        )
        if view is None:
            raise ContextNotFound(f"no session {session_id!r} (unknown or expired)")
        return view

    async def interactions(self, tenant: str, session_id: str, limit: int) -> list[Interaction]:
        view = await self.get_session(tenant, session_id)
        return list(view.interactions[-limit:]) if limit > 0 else []

    def _interaction(self, role: Any, content: Any, metadata: Any, now: float) -> Interaction:
        if role not in ROLES:
            raise InvalidContext(f"role must be one of {', '.join(ROLES)}", param="role")
        if not isinstance(content, str):
            raise InvalidContext("content must be a string", param="content")
        metadata = self._check_json(metadata, "metadata", self.config.max_interaction_bytes)
        size = len(content.encode()) + len(orjson.dumps(metadata))
        if size > self.config.max_interaction_bytes:
            raise InvalidContext(
                f"the interaction is {size} bytes; the limit is "
                f"{self.config.max_interaction_bytes}",
                param="content",
            )
        return Interaction(role, content, metadata, now)

    async def add_interactions(
        self, tenant: str, session_id: str, turns: Sequence[Turn], *, actor: str | None
    ) -> list[Interaction]:
        check_id("session_id", session_id)
        now = self.clock()
        items = [self._interaction(r, c, m, now) for r, c, m in turns]
        if not items:
            return []
        ok = await self.store.append_interactions(
            tenant, session_id, items, keep=self.config.history_limit
        )
        if not ok:
            raise ContextNotFound(f"no session {session_id!r} (unknown or expired)")
        await self._changed([(tenant, "s", session_id)])
        await self.notify.session_updated(tenant, session_id, {"count": len(items)})
        if actor is not None:
            await self.notify.record(
                actor=actor,
                tenant=tenant,
                action="context.interactions.appended",
                resource=f"context/sessions/{session_id}",
                details={"count": len(items)},
            )
        return items

    async def append_interactions(
        self, *, tenant: str, session_id: str, turns: Sequence[Turn]
    ) -> None:
        """The inference path's append: turns are ``(role, content, metadata)``."""
        await self.add_interactions(tenant, session_id, turns, actor=None)

    # --- resolve --------------------------------------------------------------------------------

    async def resolve_for_consumer(
        self,
        *,
        tenant: str,
        consumer: str,
        registered: Sequence[str] | None,
        user_id: str | None,
        session_id: str | None,
    ) -> Json:
        """The inference path's resolve: what the policy book gives ``consumer`` (the same
        decision ``POST /v1/context/resolve`` makes). Unknown ids give an empty bundle rather
        than an error (an inference call goes on without context); with only a session, the
        profile is the session's user's."""
        if user_id is None and session_id is None:
            return {}
        policy = await self.policies.policy_for(tenant, consumer, registered)
        return await self._resolve(tenant, user_id, session_id, policy)

    async def _resolve(
        self, tenant: str, user_id: str | None, session_id: str | None, policy: CompiledPolicy
    ) -> Json:
        if not policy.sections and not policy.last:
            return {}
        if user_id is not None and not policy.needs_session:
            session_id = None  # the profile alone answers: one read fewer
        profile, view = await self._bundle(tenant, user_id, session_id, policy.last)
        # A private copy: the bundle shares dicts with the cache, and callers may change it.
        return orjson.loads(orjson.dumps(policy.apply(profile, view)))  # type: ignore[no-any-return]

    async def resolve_for(
        self, tenant: str, consumer: str, user_id: str | None, session_id: str | None
    ) -> Json:
        """``POST /v1/context/resolve``: by the consumer's policy; unknown ids are a 404."""
        check_id("consumer", consumer)
        if user_id is None and session_id is None:
            raise InvalidContext("give user_id, session_id or both", param="user_id")
        if user_id is not None:
            check_id("user_id", user_id)
        if session_id is not None:
            check_id("session_id", session_id)
        policy = await self.policies.lookup(tenant, consumer)
        profile, view = await self._bundle(tenant, user_id, session_id, policy.last)
        if session_id is not None and view is None:
            raise ContextNotFound(f"no session {session_id!r} of this user (unknown or expired)")
        if user_id is not None and profile is None and view is None:
            raise ContextNotFound(f"no context for user {user_id!r}")
        return policy.apply(profile, view)

    async def _bundle(
        self, tenant: str, user_id: str | None, session_id: str | None, last: int
    ) -> tuple[UserProfile | None, SessionView | None]:
        profile, view = await self._read(tenant, user_id, session_id, last=last)
        if view is None:
            return profile, None
        if user_id is None:
            profile, _ = await self._read(tenant, view.session.user_id, None)
        elif view.session.user_id != user_id:
            return profile, None  # never mix two users: someone else's session is absent
        return profile, view

    # --- propagation ------------------------------------------------------------------------

    def handle(self, tenant: str, session_id: str) -> str:
        """An opaque signed handle of the session, for outbound baggage."""
        return self.signer.sign(tenant, session_id)

    def verify_handle(self, handle: str) -> tuple[str, str]:
        """(tenant, session_id) of a handle issued here; ``BadHandle`` otherwise."""
        return self.signer.verify(handle)

    # --- export and erasure ------------------------------------------------------------------

    async def export_user(self, tenant: str, user_id: str) -> Json:
        export = await self.store.export_user(tenant, check_id("user_id", user_id))
        if export.empty:
            raise ContextNotFound(f"no context held for user {user_id!r}")
        sessions = []
        for view in export.sessions:
            interactions = [i.to_api() for i in view.interactions]
            sessions.append({**view.session.to_api(), "interactions": interactions})
        return {
            "user_id": user_id,
            "exported_at": iso(self.clock()),
            "profile": export.profile.to_api() if export.profile else None,
            "sessions": sessions,
        }

    async def erase_user(self, tenant: str, user_id: str, *, actor: str = "system") -> Json:
        """Remove everything held on the user, everywhere; returns the receipt."""
        check_id("user_id", user_id)
        erased = await self.store.erase_user(tenant, user_id)
        keys = [(tenant, "u", user_id)] + [(tenant, "s", s) for s in erased.session_ids]
        await self._changed(keys)
        shredded = await self.notify.shred(tenant, user_id)
        # After the key is gone: nothing read from the log from now on names the user.
        elsewhere = 0
        for listener in self.erasure:
            elsewhere += await listener.erase_user(tenant, user_id, erased.session_ids)
        if erased.records == 0 and shredded == 0 and elsewhere == 0:
            raise ContextNotFound(f"nothing is held on user {user_id!r}")
        erased_at = iso(self.clock())
        await self.notify.erased(
            tenant, user_id, {"records": erased.records, "erased_at": erased_at}
        )
        ref = self.notify.user_ref(tenant, user_id)
        await self.notify.record(
            actor=actor,
            tenant=tenant,
            action="context.user.erased",
            resource=f"context/users/{ref}",
            details={"records": erased.records},
        )
        return {
            "user_id": user_id,
            "erased_at": erased_at,
            "records": erased.records,
            "event_keys_shredded": shredded,
        }
