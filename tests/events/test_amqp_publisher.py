"""The AMQP exchange publisher against the real RabbitMQ (127.0.0.1:5672): the cluster's
events reach a queue bound to the exchange as structured CloudEvents, in log order, once in
the normal case; RabbitMQ away loses nothing and holds no request; credentials stay out of
logs; an erased user's personal part is published erased."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from meshgate.app import Services
from meshgate.config import ConfigError, Settings, load_settings
from meshgate.events.amqp import AmqpPublisher
from tests.conftest import app_client, free_port, unavailable

AMQP_URL = os.environ.get("MESHGATE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
IRIS = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]
}
FAST = {"backoff_seconds": 0.05, "backoff_max_seconds": 0.2, "timeout_seconds": 3}


@dataclass
class Broker:
    url: str
    exchange: str
    queue: AbstractQueue
    channel: aio_pika.abc.AbstractChannel


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """A fresh exchange (pre-declared as the publisher would) with a queue bound to every
    routing key; both deleted afterwards. No other exchange or queue is touched."""
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
    except Exception as exc:
        unavailable("RabbitMQ (AMQP)", exc)
    name = "mgtest." + secrets.token_hex(6)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(name + ".q", durable=False, auto_delete=False)
    await queue.bind(exchange, "#")
    try:
        yield Broker(AMQP_URL, name, queue, channel)
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        await connection.close()


def services_of(client: httpx.AsyncClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def publisher_of(client: httpx.AsyncClient) -> AmqpPublisher:
    publisher = services_of(client).amqp
    assert publisher is not None
    return publisher


def amqp_settings(url: str, exchange: str, **extra: Any) -> dict[str, Any]:
    return {"events": {"amqp": {"url": url, "exchange": exchange, **FAST, **extra}}}


async def receive(queue: AbstractQueue, n: int, *, within: float = 30) -> list[Any]:
    """``n`` messages (acknowledged), then a moment to see that no more come."""
    got: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(within):
        while len(got) < n:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            got.append(message)
    await asyncio.sleep(0.5)
    extra = await queue.get(no_ack=True, fail=False)
    assert extra is None, f"more than {n} messages: {extra.body[:200]!r}"
    return got


async def integration_events(client: httpx.AsyncClient, n: int, start: int = 0) -> list[Any]:
    body = [
        {
            "specversion": "1.0",
            "id": f"e{i}",
            "source": "/orders",
            "type": "com.acme.order.placed",
            "data": {"i": i},
        }
        for i in range(start, start + n)
    ]
    answer = await client.post("/v1/events", json=body)
    assert answer.status_code == 201, answer.text
    events: list[Any] = answer.json()
    return events


async def shown(client: httpx.AsyncClient, **params: Any) -> list[Any]:
    """What ``/v1/events`` shows."""
    answer = await client.get("/v1/events", params={"limit": 500, **params})
    assert answer.status_code == 200, answer.text
    events: list[Any] = answer.json()["events"]
    return events


def sample(client: httpx.AsyncClient, name: str, labels: dict[str, str] | None = None) -> float:
    value = services_of(client).metrics.registry.get_sample_value(name, labels or {})
    return value or 0.0


async def test_events_reach_a_bound_queue_as_structured_cloudevents_in_log_order(
    make_settings: Callable[..., Settings], broker: Broker
) -> None:
    settings = make_settings(
        demo=True, **amqp_settings(broker.url, broker.exchange, types=["meshgate.*", "com.acme.*"])
    )
    async with app_client(settings) as client:
        answer = await client.post("/v2/models/iris/infer", json=IRIS, headers={"x-user-id": "ada"})
        assert answer.status_code == 200, answer.text
        await integration_events(client, 60)
        await integration_events(client, 60, start=60)
        log = await shown(client)
        assert len(log) > 120
        messages = await receive(broker.queue, len(log))
        assert publisher_of(client).published == len(log)
        assert sample(client, "meshgate_amqp_published_total") == len(log)
        lag = sample(client, "meshgate_event_lag_seconds", {"consumer": "events.amqp"})
        assert 0 <= lag < 60

    # Every event of the log, in its order, each the body /v1/events shows.
    assert [orjson.loads(m.body) for m in messages] == log
    for message, event in zip(messages, log, strict=True):
        assert message.content_type == "application/cloudevents+json"
        assert message.message_id == event["id"]
        assert message.routing_key == event["type"]
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers["meshgate-tenant"] == "default"
    made = [orjson.loads(m.body) for m in messages if m.routing_key == "meshgate.prediction.made"]
    assert made and made[0]["data"]["personal"]["user_id"] == "ada"
    assert [e["data"]["i"] for e in log if e["type"] == "com.acme.order.placed"] == list(range(120))


async def test_types_pick_what_is_published_and_a_missing_exchange_is_declared(
    make_settings: Callable[..., Settings], broker: Broker
) -> None:
    # An exchange nobody declared: the publisher declares it (durable, topic).
    fresh = broker.exchange + ".new"
    settings = make_settings(**amqp_settings(broker.url, fresh, types=["com.acme.order.placed"]))
    try:
        async with app_client(settings) as client:
            await integration_events(client, 3)
            async with asyncio.timeout(30):
                while publisher_of(client).published < 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        # Declaring it again as the publisher does succeeds only when it is the same kind.
        declared = await broker.channel.declare_exchange(
            fresh, aio_pika.ExchangeType.TOPIC, durable=True
        )
    finally:
        with contextlib.suppress(Exception):
            await broker.channel.exchange_delete(fresh)
    assert declared.name == fresh


async def test_rabbitmq_away_holds_nothing_loses_nothing_and_an_erased_user_stays_erased(
    make_settings: Callable[..., Settings], broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="meshgate")
    dead = f"amqp://guest:pw-not-to-be-seen@127.0.0.1:{free_port()}/"
    base = {"demo": True}
    async with app_client(make_settings(**base, **amqp_settings(dead, broker.exchange))) as client:
        for user in ("ada", "lin"):
            answer = await client.post(
                "/v2/models/iris/infer", json=IRIS, headers={"x-user-id": user}
            )
            assert answer.status_code == 200, answer.text
        assert (await client.get("/readyz")).status_code == 200
        async with asyncio.timeout(30):
            while sample(client, "meshgate_amqp_failures_total") < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert sample(client, "meshgate_event_lag_seconds", {"consumer": "events.amqp"}) >= 0
        assert publisher_of(client).published == 0
        assert (await client.delete("/v1/context/users/ada")).status_code == 200
        before = await shown(client)
    assert "pw-not-to-be-seen" not in caplog.text
    assert "AMQP publisher" in caplog.text  # the failures were logged, without the password

    # Restarted with RabbitMQ reachable: everything from the first event on, nothing twice.
    settings = make_settings(**base, **amqp_settings(broker.url, broker.exchange))
    async with app_client(settings) as client:
        await integration_events(client, 5)
        # Only the platform's own (types: meshgate.* by default), not the integration events.
        log = [e for e in await shown(client) if e["type"].startswith("meshgate.")]
        messages = await receive(broker.queue, len(log))
    bodies = [orjson.loads(m.body) for m in messages]
    assert [b["id"] for b in bodies] == [e["id"] for e in log]
    assert bodies[: len(before)] == before
    personal = [b["data"]["personal"] for b in bodies if b["type"] == "meshgate.prediction.made"]
    assert personal[0] == {"erased": True} and personal[1]["user_id"] == "lin"
    assert b"ada" not in b"".join(m.body for m in messages)


async def test_a_stopped_publisher_resumes_where_it_left_off(
    make_settings: Callable[..., Settings], broker: Broker
) -> None:
    settings = make_settings(**amqp_settings(broker.url, broker.exchange, types=["com.acme.*"]))
    async with app_client(settings) as client:
        await integration_events(client, 10)
        first = await receive(broker.queue, 10)
    async with app_client(settings) as client:
        await integration_events(client, 10, start=10)
        second = await receive(broker.queue, 10)
    received = [orjson.loads(m.body)["data"]["i"] for m in first + second]
    assert received == list(range(20))


def test_the_url_must_be_amqp_and_is_never_shown(tmp_path: Any) -> None:
    config = tmp_path / "meshgate.yaml"
    config.write_text("events:\n  amqp:\n    url: http://user:hunter2@rabbit:5672/\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "events.amqp.url" in str(raised.value) and "hunter2" not in str(raised.value)
    config.write_text("events:\n  amqp:\n    url: amqps://user:hunter2@rabbit:5671/prod\n")
    settings = load_settings(config)
    assert settings.events.amqp.url is not None
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()


class Proxy:
    """A TCP proxy to RabbitMQ on a port of its own: :meth:`cut` drops its connections and
    refuses new ones (RabbitMQ restarting), :meth:`restore` lets them through again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_connection_lost_midway_is_retried_and_nothing_is_lost(
    make_settings: Callable[..., Settings], broker: Broker
) -> None:
    proxy = Proxy(("127.0.0.1", 5672))
    await proxy.restore()
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    settings = make_settings(**amqp_settings(url, broker.exchange, types=["com.acme.*"]))
    try:
        async with app_client(settings) as client:
            await integration_events(client, 10)
            first = await receive(broker.queue, 10)
            await proxy.cut()  # RabbitMQ goes away
            await integration_events(client, 10, start=10)  # requests do not wait for it
            assert (await client.get("/readyz")).status_code == 200
            async with asyncio.timeout(30):
                while sample(client, "meshgate_amqp_failures_total") < 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await proxy.restore()  # and comes back
            async with asyncio.timeout(30):
                while publisher_of(client).published < 20:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            second = await receive(broker.queue, 10)
    finally:
        await proxy.cut()
    received = [orjson.loads(m.body)["data"]["i"] for m in first + second]
    assert received == list(range(20))
