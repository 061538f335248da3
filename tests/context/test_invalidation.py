"""The invalidation bus on real Redis: nodes drop what another node changed, and a node
whose subscription breaks forgets everything it cached, then listens again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aredis

from meshgate.context.backends.redis import RedisContextStore
from meshgate.context.cache import MISSING, ContextCache
from meshgate.context.config import ContextConfig
from meshgate.context.handle import HandleSigner
from meshgate.context.invalidation import RedisBus
from meshgate.context.service import ContextService
from tests.context.quiet import NothingRegistered, quiet_notifier


@dataclass
class Node:
    service: ContextService
    bus: RedisBus
    store: RedisContextStore


async def start_node(redis_url: str, namespace: str) -> Node:
    config = ContextConfig()
    cache = ContextCache(100, 60)
    store = RedisContextStore(redis_url, prefix=f"{namespace}:ctx:")
    await store.start()
    bus = RedisBus(redis_url, f"{namespace}:ctx:invalidate", cache)
    await bus.start()
    signer = HandleSigner(b"k" * 32)
    service = ContextService(
        store,
        config,
        signer=signer,
        cache=cache,
        bus=bus,
        notifier=quiet_notifier(signer),
        registered=NothingRegistered(),
    )
    return Node(service, bus, store)


@pytest.fixture
async def nodes(redis_url: str, namespace: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = await start_node(redis_url, namespace), await start_node(redis_url, namespace)
    yield a, b
    for node in (a, b):
        await node.bus.close()
        await node.store.close()


async def seen(node: Node, user: str, value: int, within: float) -> float:
    start = time.perf_counter()
    while True:
        got = await node.service.get_user("acme", user)
        if got.attributes.get("n") == value:
            return time.perf_counter() - start
        assert time.perf_counter() - start < within, f"still {got.attributes} on the other node"
        await asyncio.sleep(0.002)


async def cached_on(node: Node, user: str) -> None:
    """Read until the read is cached (a fill racing an invalidation is rightly dropped)."""
    deadline = time.perf_counter() + 1
    while node.service.cache.get(("acme", "u", user)) is MISSING:
        assert time.perf_counter() < deadline, "the read was never cached"
        await node.service.get_user("acme", user)
        await asyncio.sleep(0.001)


async def patch(node: Node, n: int) -> None:
    await node.service.patch_user("acme", "u1", {"attributes": {"n": n}}, if_match=None, actor="t")


async def test_a_write_on_one_node_drops_the_entry_on_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await patch(a, 1)
    assert (await b.service.get_user("acme", "u1")).attributes == {"n": 1}
    await cached_on(b, "u1")
    await patch(a, 2)
    assert await seen(b, "u1", 2, within=0.1) < 0.1


async def test_a_broken_subscription_clears_the_cache_and_resubscribes(
    nodes: tuple[Node, Node], redis_url: str
) -> None:
    a, b = nodes
    await patch(a, 1)
    await cached_on(b, "u1")
    admin = aredis.Redis.from_url(redis_url)
    try:
        clients = await admin.client_list()
        ours = [c["id"] for c in clients if c.get("name") == b.bus.client_name]
        assert ours, "the bus's subscription is not on the server"
        epoch = b.service.cache.epoch
        for client_id in ours:
            await admin.client_kill_filter(_id=client_id)
        deadline = time.perf_counter() + 5
        while b.service.cache.epoch == epoch or len(b.service.cache):
            assert time.perf_counter() < deadline, "the cache was not cleared"
            await asyncio.sleep(0.01)
        # listening again: a later write elsewhere still reaches this node
        while not [c for c in await admin.client_list() if c.get("name") == b.bus.client_name]:
            assert time.perf_counter() < deadline, "the bus did not resubscribe"
            await asyncio.sleep(0.01)
    finally:
        await admin.aclose()
    await cached_on(b, "u1")
    await asyncio.sleep(0.05)  # let the new subscription settle on the server
    await patch(a, 3)
    await seen(b, "u1", 3, within=0.5)
