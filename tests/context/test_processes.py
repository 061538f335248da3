"""Real ``meshgate serve`` processes: caches kept coherent across nodes on Redis, and
acknowledged writes on SQLite surviving a SIGKILL."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server

pytestmark = pytest.mark.e2e
WITHIN = 0.1  # a write on one node is seen on another within 100 ms


def redis_env(redis_url: str, namespace: str) -> dict[str, str]:
    return {
        "MESHGATE_REDIS_URL": redis_url,
        "MESHGATE_CONTEXT__URL": redis_url,
        "MESHGATE_EVENTS__URL": redis_url,
        "MESHGATE_NAMESPACE": namespace,
    }


def seen_within(http: httpx.Client, path: str, check: Callable[[httpx.Response], bool]) -> float:
    """Seconds until ``check`` holds for GET ``path``; fails the test past ``WITHIN``."""
    start = time.perf_counter()
    while True:
        r = http.get(path)
        elapsed = time.perf_counter() - start
        if check(r):
            return elapsed
        assert elapsed < WITHIN, (
            f"{path} still showed {r.status_code} {r.text} after {elapsed:.3f}s"
        )
        time.sleep(0.002)


def test_writes_on_one_node_reach_the_other_nodes_cache(
    start_server: Callable[..., Server], redis_url: str, namespace: str
) -> None:
    env = redis_env(redis_url, namespace)
    a, b = start_server(env=env), start_server(env=env)
    with a.client() as on_a, b.client() as on_b:
        assert on_a.patch("/v1/context/users/u1", json={"attributes": {"n": 0}}).status_code == 201
        sid = on_a.post("/v1/context/sessions", json={"user_id": "u1"}).json()["session_id"]
        on_a.put("/v1/context/policies/model:x", json={"allow": ["attributes.n"]})
        for n in range(1, 6):
            # B reads (and caches) the current value, then A writes the next one
            assert on_b.get("/v1/context/users/u1").json()["attributes"] == {"n": n - 1}
            r = on_a.patch("/v1/context/users/u1", json={"attributes": {"n": n}})
            assert r.status_code == 200
            seen_within(
                on_b, "/v1/context/users/u1", lambda r, n=n: r.json()["attributes"] == {"n": n}
            )

        assert on_b.get(f"/v1/context/sessions/{sid}/interactions").json()["interactions"] == []
        on_a.post(
            f"/v1/context/sessions/{sid}/interactions", json={"role": "user", "content": "hi"}
        )
        seen_within(
            on_b,
            f"/v1/context/sessions/{sid}/interactions",
            lambda r: [i["content"] for i in r.json()["interactions"]] == ["hi"],
        )

        resolve = {"consumer": "model:x", "user_id": "u1"}
        assert on_b.post("/v1/context/resolve", json=resolve).json()["context"] == {
            "attributes": {"n": 5}
        }
        on_a.put("/v1/context/policies/model:x", json={"allow": []})
        start = time.perf_counter()
        while on_b.post("/v1/context/resolve", json=resolve).json()["context"] != {}:
            assert time.perf_counter() - start < WITHIN, "policy change not seen on the other node"

        # writers on both nodes at once: the compare-and-set loses no update
        def write(http: httpx.Client, prefix: str) -> list[int]:
            return [
                http.patch(
                    "/v1/context/users/u1", json={"preferences": {f"{prefix}{i}": i}}
                ).status_code
                for i in range(10)
            ]

        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(write, (on_a, on_b), ("a", "b")))
        assert statuses == [[200] * 10, [200] * 10]
        prefs = on_a.get("/v1/context/users/u1").json()["preferences"]
        assert prefs == {f"{p}{i}": i for p in "ab" for i in range(10)}

        # erasure on A empties B's cache too
        assert on_b.get(f"/v1/context/sessions/{sid}").status_code == 200
        receipt = on_a.delete("/v1/context/users/u1").json()
        assert receipt["records"] == 1 + 1 + 1  # profile, session, interaction
        seen_within(on_b, "/v1/context/users/u1", lambda r: r.status_code == 404)
        seen_within(on_b, f"/v1/context/sessions/{sid}", lambda r: r.status_code == 404)
        assert on_b.get("/v1/context/users/u1/export").status_code == 404


def test_acknowledged_sqlite_writes_survive_sigkill(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "durable"
    server = start_server(data_dir=data)
    acknowledged: dict[str, int] = {}
    with server.client() as http:
        sid = http.post("/v1/context/sessions", json={"user_id": "u0", "ttl_seconds": 3600}).json()[
            "session_id"
        ]
        for n in range(30):
            r = http.patch(f"/v1/context/users/u{n % 5}", json={"attributes": {"n": n}})
            assert r.status_code in (200, 201)
            acknowledged[f"u{n % 5}"] = n
            r = http.post(
                f"/v1/context/sessions/{sid}/interactions",
                json={"role": "user", "content": f"m{n}"},
            )
            assert r.status_code == 201
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()

    again = start_server(data_dir=data)
    with again.client() as http:
        for user, n in acknowledged.items():
            got = http.get(f"/v1/context/users/{user}").json()
            assert got["attributes"] == {"n": n}
        items = http.get(f"/v1/context/sessions/{sid}/interactions", params={"limit": 50}).json()
        assert [i["content"] for i in items["interactions"]] == [f"m{n}" for n in range(30)]
    assert (data / "context.db").exists()
