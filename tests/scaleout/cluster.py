"""Three ``meshgate serve`` nodes on PostgreSQL, Redis and NATS behind HAProxy, as the README's
scale-out procedure sets them up, plus a webhook receiver and a steady load."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import ADMIN_KEY, free_port

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "meshgate.cfg"
START_TIMEOUT = 240.0  # generous: the whole team shares two cores


def shared_secrets() -> dict[str, str]:
    """What every node must share (README, "Scale-out")."""
    return {
        "MESHGATE_ADMIN_KEY": ADMIN_KEY,
        "MESHGATE_KEY_PEPPER": secrets.token_urlsafe(32),
        "MESHGATE_CONTEXT__HANDLE_SECRET": secrets.token_urlsafe(32),
        "MESHGATE_AUDIT__SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


class Node:
    """One ``meshgate serve`` process on a fixed port (a restart keeps the address)."""

    def __init__(self, name: str, env: dict[str, str], data_dir: Path):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "MESHGATE_PORT": str(self.port)}
        self.data_dir = data_dir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env["MESHGATE_DATA_DIR"] = str(self.data_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.data_dir / f"serve-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshgate", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/readyz").status_code == 200:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.data_dir / f"serve-{self.starts}.log").read_text()[-3000:]

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM: uvicorn drains what is in flight, then the backends close."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class Balancer:
    """HAProxy with the repository's configuration; its runtime API takes nodes out and in."""

    def __init__(self, nodes: list[Node], workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket = workdir / "haproxy.sock"
        env = {
            **os.environ,
            "MESHGATE_LB_BIND": f"127.0.0.1:{self.port}",
            "MESHGATE_LB_SOCKET": str(self.socket),
            **{f"MESHGATE_NODE{i + 1}": f"127.0.0.1:{n.port}" for i, n in enumerate(nodes)},
        }
        self.log = workdir / "haproxy.log"
        self.proc = subprocess.Popen(
            ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def command(self, line: str) -> str:
        """One runtime API command, e.g. ``set server meshgate/node1 state maint``."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def up_servers(self) -> set[str]:
        """Names of the nodes HAProxy currently sends traffic to."""
        out = set()
        for line in self.command("show servers state meshgate").splitlines()[2:]:
            fields = line.split()
            # srv_op_state 2 = running; srv_admin_state 0 = not in maintenance or drain
            if len(fields) > 6 and fields[5] == "2" and fields[6] == "0":
                out.add(fields[3])
        return out

    def wait_serving(self, names: set[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if self.up_servers() == names:
                    return
            time.sleep(0.1)
        raise AssertionError(f"balancer never served exactly {names}: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class WebhookReceiver:
    """A real HTTP endpoint counting the events delivered to it."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    received[orjson.loads(body)["id"]] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LoadResult:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # acknowledged event ids
    context: dict[str, int] = field(default_factory=dict)  # user -> last acknowledged value


class SteadyLoad:
    """Workers sending writes (an event, a context patch) and reads through the balancer
    until stopped; every acknowledged write is remembered."""

    def __init__(self, url: str, workers: int = 4, tag: str = "load"):
        self.url = url
        self.workers = workers
        self.tag = tag
        self.stopping = threading.Event()
        self.results = [LoadResult() for _ in range(workers)]
        self.pool = ThreadPoolExecutor(workers)
        self.futures = [self.pool.submit(self._work, w) for w in range(workers)]

    def _work(self, w: int) -> None:
        result = self.results[w]
        user = f"{self.tag}-user-{w}"
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            n = 0
            while not self.stopping.is_set():
                n += 1
                event_id = f"{self.tag}-{w}-{n}"
                calls = (
                    ("POST", "/v1/events", {"json": cloudevent(event_id)}, 201),
                    (
                        "PATCH",
                        f"/v1/context/users/{user}",
                        {"json": {"attributes": {"n": n}}},
                        None,
                    ),
                    ("GET", "/v1/whoami", {}, 200),
                )
                for method, path, kwargs, status in calls:
                    result.requests += 1
                    try:
                        r = http.request(method, path, **kwargs)
                    except httpx.HTTPError as exc:
                        result.failures.append(f"{method} {path}: {exc!r}")
                        continue
                    if (status and r.status_code != status) or r.status_code >= 300:
                        result.failures.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
                        continue
                    if path == "/v1/events":
                        result.events.append(event_id)
                    elif method == "PATCH":
                        result.context[user] = n

    def stop(self) -> LoadResult:
        self.stopping.set()
        for f in self.futures:
            f.result(timeout=120)
        self.pool.shutdown()
        total = LoadResult()
        for r in self.results:
            total.requests += r.requests
            total.failures += r.failures
            total.events += r.events
            total.context.update(r.context)
        return total


def cloudevent(event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/scaleout",
        "type": "scaleout.tick",
        "data": {"id": event_id},
    }


def all_events(http: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = http.get("/v1/events", params={"after": after, "limit": 500}).json()["events"]
        if not page:
            return out
        out += page
        after = page[-1]["sequence"]
