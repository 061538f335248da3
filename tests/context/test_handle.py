"""Context handles: opaque, signed, free of personal data, and tamper-evident."""

from __future__ import annotations

import base64

import httpx
import pytest

from meshgate.context.handle import HandleSigner
from meshgate.context.model import BadHandle
from meshgate.context.service import ContextService


def decoded(handle: str) -> bytes:
    return b"".join(
        base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in handle.split(".")[1:]
    )


async def test_a_session_handle_carries_no_personal_data(api: httpx.AsyncClient) -> None:
    await api.patch(
        "/v1/context/users/alice@example.com",
        json={"attributes": {"name": "Alice Martin"}, "preferences": {"dialect": "Provencal"}},
    )
    r = await api.post(
        "/v1/context/sessions", json={"user_id": "alice@example.com", "state": {"x": "secret"}}
    )
    session = r.json()
    handle = session["handle"]
    raw = handle.encode() + decoded(handle)
    for personal in (b"alice", b"Alice", b"example.com", b"Martin", b"secret", b"Provencal"):
        assert personal not in raw
    service: ContextService = api.app.state.services.context  # type: ignore[attr-defined]
    assert service.verify_handle(handle) == ("default", session["session_id"])
    assert service.handle("default", session["session_id"]) == handle


def test_tampering_is_detected() -> None:
    signer = HandleSigner(b"k" * 32)
    handle = signer.sign("acme", "ses_abc")
    assert signer.verify(handle) == ("acme", "ses_abc")
    version, body, mac = handle.split(".")
    forged_body = base64.urlsafe_b64encode(b"globex\x1fses_abc").rstrip(b"=").decode()
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    for bad in (
        f"{version}.{forged_body}.{mac}",
        f"{version}.{body}.{flipped}",
        f"v2.{body}.{mac}",
        f"{version}.{body}",
        "not a handle",
        "",
    ):
        with pytest.raises(BadHandle):
            signer.verify(bad)
    with pytest.raises(BadHandle, match="signature"):
        HandleSigner(b"x" * 32).verify(handle)


def test_pseudonyms_are_stable_per_tenant_and_hide_the_id() -> None:
    signer = HandleSigner(b"k" * 32)
    ref = signer.pseudonym("acme", "alice")
    assert ref == signer.pseudonym("acme", "alice")
    assert ref != signer.pseudonym("globex", "alice") and "alice" not in ref


async def test_a_service_resolves_context_from_the_handle_in_its_baggage(
    api: httpx.AsyncClient,
) -> None:
    from tests.context.conftest import as_key, make_key

    await api.patch("/v1/context/users/u1", json={"preferences": {"language": "fr"}})
    session = (await api.post("/v1/context/sessions", json={"user_id": "u1"})).json()
    await api.put("/v1/context/policies/svc:billing", json={"allow": ["preferences.language"]})
    body = {"consumer": "svc:billing", "handle": session["handle"]}
    r = await api.post("/v1/context/resolve", json=body)
    assert r.status_code == 200
    assert r.json()["session_id"] == session["session_id"]
    assert r.json()["context"] == {"preferences": {"language": "fr"}}

    forged = session["handle"][:-3] + ("AAA" if not session["handle"].endswith("AAA") else "BBB")
    r = await api.post("/v1/context/resolve", json={**body, "handle": forged})
    assert r.status_code == 400 and "signature" in r.json()["detail"]
    r = await api.post("/v1/context/resolve", json={**body, "session_id": session["session_id"]})
    assert r.status_code == 400 and "not both" in r.json()["detail"]
    other = as_key(await make_key(api, ["context:read"], tenant="globex"))
    r = await api.post("/v1/context/resolve", json=body, headers=other)
    assert r.status_code == 404
