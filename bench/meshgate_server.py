"""Meshgate under test: ``meshgate serve`` on a fresh data dir with limits far above the load.

The rate limiter still runs on every request (it is the feature measured); its limits are set
so high that the benchmark never meets them.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

import httpx

from bench.mock_upstream import MODEL
from bench.procs import WORK, Proc, free_port

HIGH = str(1_000_000_000)
CHAT_MODEL = "bench-chat"
BENCH_USER = "bench-user-1"


class NotAvailable(Exception):
    """A route the benchmark needs is not there (yet); the section reports it and moves on."""


def fresh_dir(name: str) -> Path:
    path = WORK / "data" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def server_env(data_dir: Path, admin_key: str, pepper: str | None = None) -> dict[str, str]:
    """Settings of every Meshgate under test: production defaults (info logs, so the access
    log line is part of the measured path) with rate limits far above the load."""
    return {
        "MESHGATE_DATA_DIR": str(data_dir),
        "MESHGATE_ADMIN_KEY": admin_key,
        "MESHGATE_KEY_PEPPER": pepper or secrets.token_urlsafe(24),
        "MESHGATE_LOG_LEVEL": "info",
        # The mock upstream is on loopback, which the egress policy refuses unless allowed.
        "MESHGATE_SECURITY__EGRESS_ALLOW": '["127.0.0.1"]',
        "MESHGATE_LIMITS__KEY_RPM": HIGH,
        "MESHGATE_LIMITS__KEY_TPM": HIGH,
        "MESHGATE_LIMITS__TENANT_RPM": HIGH,
        "MESHGATE_LIMITS__TENANT_TPM": HIGH,
    }


class Meshgate:
    def __init__(
        self,
        name: str,
        *,
        core: str | None,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        admin_key: str | None = None,
        pepper: str | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = admin_key or "mg_bench_" + secrets.token_urlsafe(24)
        full_env = {
            **server_env(data_dir or fresh_dir(name), self.admin_key, pepper),
            "MESHGATE_PORT": str(self.port),
            **(env or {}),
        }
        argv = [sys.executable, "-m", "meshgate", "serve"]
        self.proc = Proc(name, argv, core=core, env=full_env)
        try:
            self.proc.wait_http(self.url + "/healthz")
        except Exception:
            self.proc.stop()
            raise

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def stop(self) -> None:
        self.proc.stop()

    def register_chat_model(self, upstream: str) -> None:
        """The chat model through the registry API, pointing at the mock upstream."""
        with httpx.Client(base_url=self.url, headers=self.auth, timeout=30) as client:
            model = {
                "name": CHAT_MODEL,
                "task": "chat",
                "description": "benchmark chat model on the mock upstream",
                "intended_purpose": "benchmarking",
                "risk_level": "minimal",
                "context_policy": {"allow": ["preferences.language", "attributes.*"]},
            }
            created = client.post("/v1/registry/models", json=model)
            if created.status_code in (404, 405):
                raise NotAvailable("POST /v1/registry/models is not served yet")
            if created.status_code not in (200, 201, 409):
                raise RuntimeError(f"registering the model: {created.status_code} {created.text}")
            version = {
                "version": "1",
                "provider": {"type": "openai", "base_url": upstream + "/v1", "model": MODEL},
            }
            added = client.post(f"/v1/registry/models/{CHAT_MODEL}/versions", json=version)
            if added.status_code not in (200, 201, 409):
                raise RuntimeError(f"registering the version: {added.status_code} {added.text}")
            # A profile for the user, so context enrichment has something to inject.
            patched = client.patch(
                f"/v1/context/users/{BENCH_USER}",
                json={"preferences": {"language": "en"}, "attributes": {"plan": "pro"}},
            )
            if patched.status_code >= 400 and patched.status_code not in (404, 405):
                raise RuntimeError(f"patching the user: {patched.status_code} {patched.text}")
            probe = client.post("/v1/chat/completions", json=chat_body(CHAT_MODEL))
            if probe.status_code in (404, 405):
                raise NotAvailable("POST /v1/chat/completions is not served yet")
            if probe.status_code != 200:
                raise RuntimeError(f"chat probe: {probe.status_code} {probe.text[:500]}")


def chat_body(model: str, *, stream: bool = False, user: str | None = BENCH_USER) -> dict:
    body: dict = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in five words."},
        ],
        "max_tokens": 16,
    }
    if user is not None:
        body["user"] = user
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body
