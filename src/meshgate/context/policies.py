"""Which policy a consumer has: set per tenant through the admin API, else from the config.

Policies are read on the hot path, so the compiled policy of each (tenant, consumer) is
cached and invalidated across processes like any other context entry.
"""

from __future__ import annotations

from meshgate.context.base import ContextStore
from meshgate.context.cache import MISSING, ContextCache
from meshgate.context.invalidation import InvalidationBus
from meshgate.context.model import ContextNotFound, Json, check_id
from meshgate.context.policy import CompiledPolicy, PolicyCompiler

DENY_ALL: tuple[str, ...] = ()


class PolicyBook:
    def __init__(
        self,
        store: ContextStore,
        compiler: PolicyCompiler,
        configured: dict[str, list[str]],
        cache: ContextCache,
        bus: InvalidationBus,
    ):
        self.store = store
        self.compiler = compiler
        self.cache = cache
        self.bus = bus
        # Validated at start, so a bad policy in the config stops the process early.
        self.configured = {c: compiler.compile(a) for c, a in configured.items()}

    async def policy_for(self, tenant: str, consumer: str) -> CompiledPolicy:
        """The consumer's compiled policy; a consumer without one sees nothing."""
        key = (tenant, "p", consumer)
        policy = self.cache.get(key)
        if policy is MISSING:
            epoch = self.cache.epoch
            allow = await self.store.get_policy(tenant, consumer)
            if allow is not None:
                policy = self.compiler.compile(allow)
            else:
                policy = self.configured.get(consumer) or self.compiler.compile(DENY_ALL)
            self.cache.fill(key, policy, epoch)
        return policy  # type: ignore[no-any-return]

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
        raise ContextNotFound(f"no policy for consumer {consumer!r}: it sees nothing")

    async def list(self, tenant: str) -> list[Json]:
        stored = await self.store.list_policies(tenant)
        out = {
            c: {"consumer": c, "allow": list(p.allow), "source": "config"}
            for c, p in self.configured.items()
        }
        out.update({c: {"consumer": c, "allow": a, "source": "api"} for c, a in stored.items()})
        return [out[c] for c in sorted(out)]

    async def _changed(self, tenant: str, consumer: str) -> None:
        key = (tenant, "p", consumer)
        self.cache.invalidate(key)
        await self.bus.publish(key)
