"""Which policy a consumer has. One book decides, for inference and for
``POST /v1/context/resolve`` alike, in this order:

1. a policy set for the tenant through the API (``PUT /v1/context/policies/{consumer}``);
2. else the config's ``context.policies``;
3. else the policy the consumer was registered with (a model's ``context_policy``);
4. else nothing: the consumer sees nothing.

The first two are read on the hot path, so each (tenant, consumer)'s is cached and
invalidated across processes like any other context entry. The third is passed in by the
inference path (from the model's loaded registry record) and read from the registry otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshgate.context.base import ContextStore
from meshgate.context.cache import MISSING, ContextCache
from meshgate.context.invalidation import InvalidationBus
from meshgate.context.model import ContextNotFound, Json, check_id
from meshgate.context.policy import CompiledPolicy, PolicyCompiler
from meshgate.context.ports import RegisteredPolicies

DENY_ALL: tuple[str, ...] = ()


class PolicyBook:
    def __init__(
        self,
        store: ContextStore,
        compiler: PolicyCompiler,
        configured: dict[str, list[str]],
        cache: ContextCache,
        bus: InvalidationBus,
        registered: RegisteredPolicies,
    ):
        self.store = store
        self.compiler = compiler
        self.cache = cache
        self.bus = bus
        self.registered = registered
        # Validated at start, so a bad policy in the config stops the process early.
        self.configured = {c: compiler.compile(a) for c, a in configured.items()}

    async def policy_for(
        self, tenant: str, consumer: str, registered: Sequence[str] | None
    ) -> CompiledPolicy:
        """The consumer's compiled policy, given the one it was registered with (if any)."""
        chosen = await self._set_policy(tenant, consumer)
        return chosen if chosen is not None else self._registered(registered)

    async def lookup(self, tenant: str, consumer: str) -> CompiledPolicy:
        """The consumer's policy, its registered one read from the registry."""
        chosen = await self._set_policy(tenant, consumer)
        if chosen is not None:
            return chosen
        return self._registered(await self.registered.registered_policy(tenant, consumer))

    def _registered(self, allow: Sequence[str] | None) -> CompiledPolicy:
        return self.compiler.compile(tuple(allow) if allow is not None else DENY_ALL)

    async def _set_policy(self, tenant: str, consumer: str) -> CompiledPolicy | None:
        """The API-set policy, else the configured one, else None (cached either way)."""
        key = (tenant, "p", consumer)
        cached = self.cache.get(key)
        if cached is not MISSING:
            policy: CompiledPolicy | None = cached
            return policy
        epoch = self.cache.epoch
        allow = await self.store.get_policy(tenant, consumer)
        policy = (
            self.compiler.compile(allow) if allow is not None else self.configured.get(consumer)
        )
        self.cache.fill(key, policy, epoch)
        return policy

    async def put(self, tenant: str, consumer: str, allow: list[str]) -> CompiledPolicy:
        check_id("consumer", consumer)
        policy = self.compiler.compile(allow)
        await self.store.put_policy(tenant, consumer, list(policy.allow))
        await self._changed(tenant, consumer)
        return policy

    async def delete(self, tenant: str, consumer: str) -> None:
        if not await self.store.delete_policy(tenant, consumer):
            raise ContextNotFound(f"no policy set for consumer {consumer!r}")
        await self._changed(tenant, consumer)

    async def describe(self, tenant: str, consumer: str) -> Json:
        allow = await self.store.get_policy(tenant, consumer)
        if allow is not None:
            return {"consumer": consumer, "allow": allow, "source": "api"}
        if consumer in self.configured:
            return {
                "consumer": consumer,
                "allow": list(self.configured[consumer].allow),
                "source": "config",
            }
        registered = await self.registered.registered_policy(tenant, consumer)
        if registered is not None:
            return {"consumer": consumer, "allow": registered, "source": "registry"}
        raise ContextNotFound(f"no policy for consumer {consumer!r}: it sees nothing")

    async def list(self, tenant: str) -> list[Json]:
        stored = await self.store.list_policies(tenant)
        registered = await self.registered.registered_policies(tenant)
        out = {c: {"consumer": c, "allow": a, "source": "registry"} for c, a in registered.items()}
        out.update(
            {
                c: {"consumer": c, "allow": list(p.allow), "source": "config"}
                for c, p in self.configured.items()
            }
        )
        out.update({c: {"consumer": c, "allow": a, "source": "api"} for c, a in stored.items()})
        return [out[c] for c in sorted(out)]

    async def _changed(self, tenant: str, consumer: str) -> None:
        key = (tenant, "p", consumer)
        self.cache.invalidate(key)
        await self.bus.publish(key)
