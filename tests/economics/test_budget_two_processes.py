"""A hard budget holds exactly across two real ``meshgate serve`` processes sharing Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Server
from tests.economics.conftest import declarations
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

CALL_COST = 5  # the fake answers 5 completion tokens; one output token costs 1
BUDGET = 50


class PatientServer(Server):
    """A server given three minutes to start: this test starts two on a shared machine."""

    def wait_ready(self, timeout: float = 180) -> None:
        super().wait_ready(timeout)


@pytest.fixture
def fake(upstreams: UpstreamLoop) -> Iterator[FakeOpenAI]:
    yield upstreams.fake("two-processes")


@pytest.fixture
def start_patient() -> Iterator[Any]:
    servers: list[Server] = []

    def start(env: dict[str, str], data_dir: Path) -> Server:
        servers.append(PatientServer(env, data_dir))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.mark.timeout(600)
def test_concurrent_calls_through_two_processes_stop_exactly_at_the_budget(
    start_patient: Any,
    redis_url: str,
    namespace: str,
    tmp_path: Path,
    fake: FakeOpenAI,
) -> None:
    shared = tmp_path / "shared"  # one SQL store: both know the key, price and budget
    shared.mkdir()
    config = shared / "meshgate.yaml"
    config.write_text(yaml.safe_dump({"models": declarations(fake)}))
    env = {
        "MESHGATE_REDIS_URL": redis_url,
        "MESHGATE_NAMESPACE": namespace,
        "MESHGATE_CONFIG": str(config),
    }
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: start_patient(env, shared), range(2))
    with first.client() as admin:
        price = {"input_per_mtok": 0, "output_per_mtok": 1_000_000}
        assert admin.put("/v1/registry/models/alpha/versions/1/price", json=price).is_success
        created = admin.post("/v1/admin/keys", json={"scopes": ["inference"]}).json()
        budget = admin.put(f"/v1/budgets/key/{created['id']}", json={"amount": BUDGET})
        assert budget.status_code == 200, budget.text
    time.sleep(1.5)  # every cached price and budget is read again after a second
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    def call(i: int) -> int:
        server = (first, second)[i % 2]
        with httpx.Client(base_url=server.url, timeout=30) as http:
            headers = {"Authorization": f"Bearer {created['key']}"}
            return http.post("/v1/chat/completions", json=body, headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(4 * BUDGET // CALL_COST)))
    assert set(statuses) == {200, 402}, statuses
    assert statuses.count(200) == BUDGET // CALL_COST
    assert fake.calls() == BUDGET // CALL_COST  # refused calls never reached the upstream
    assert 200 in statuses[0::2] and 200 in statuses[1::2]  # both processes served some
    with second.client() as admin:
        used = admin.get(f"/v1/budgets/key/{created['id']}").json()["used"]
    assert BUDGET <= used <= BUDGET + CALL_COST
