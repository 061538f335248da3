"""``/mcp`` with the official MCP client over streamable HTTP, against a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.cli.conftest import PatientServer
from tests.conftest import ADMIN_KEY, Server

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = PatientServer({}, tmp_path_factory.mktemp("mcp") / "data")
    yield running
    running.stop()


def make_key(server: Server, *scopes: str, tenant: str = "default") -> str:
    with server.client() as http:
        created = http.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes)})
        assert created.status_code == 201, created.text
        return str(created.json()["key"])


@asynccontextmanager
async def session(server: Server, key: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(server.url + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        yield mcp


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.contents)


def tool_text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def test_resources_show_a_users_context_as_the_consumers_policy_allows(
    server: Server,
) -> None:
    with server.client() as http:
        patch = {"preferences": {"language": "fr", "diet": "vegan"}, "attributes": {"tier": "gold"}}
        assert http.patch("/v1/context/users/ana", json=patch).status_code in (200, 201)
        put = http.put("/v1/context/policies/support-bot", json={"allow": ["preferences.language"]})
        assert put.status_code == 200, put.text
    reader = make_key(server, "context:read")
    async with session(server, reader) as mcp:
        templates = await mcp.list_resource_templates()
        assert any("{consumer}" in t.uri_template for t in templates.resource_templates)
        listed = await mcp.list_resources()
        assert "context://about" in [str(r.uri) for r in listed.resources]
        assert "context:write" in text_of(await mcp.read_resource("context://about"))
        seen = json.loads(text_of(await mcp.read_resource("context://users/ana/as/support-bot")))
        assert seen["context"]["preferences"] == {"language": "fr"}
        assert "attributes" not in seen["context"] or not seen["context"]["attributes"]
        nobody = json.loads(text_of(await mcp.read_resource("context://users/ana/as/stranger")))
        assert nobody["context"].get("preferences") in (None, {})  # deny by default

    other_tenant = make_key(server, "context:read", tenant="globex")
    async with session(server, other_tenant) as mcp:
        with pytest.raises(MCPError) as theirs:  # another tenant's user does not exist here
            await mcp.read_resource("context://users/ana/as/support-bot")
        assert "no context for user 'ana'" in str(theirs.value)
    no_scope = make_key(server, "inference")
    async with session(server, no_scope) as mcp:
        with pytest.raises(MCPError) as refused:
            await mcp.read_resource("context://users/ana/as/support-bot")
        assert "context:read" in str(refused.value)


async def test_tools_write_with_context_write_and_refuse_without(server: Server) -> None:
    writer = make_key(server, "context:write", "context:read", "users:assert")
    async with session(server, writer) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert names == {"remember_preference", "add_interaction", "forget_user"}
        remembered = await mcp.call_tool(
            "remember_preference", {"user_id": "ben", "key": "tone", "value": "brief"}
        )
        assert not remembered.is_error, tool_text(remembered)
        added = await mcp.call_tool(
            "add_interaction", {"user_id": "ben", "role": "user", "content": "hello"}
        )
        assert not added.is_error, tool_text(added)
        session_id = json.loads(tool_text(added))["session_id"]
    with server.client() as http:
        assert http.get("/v1/context/users/ben").json()["preferences"] == {"tone": "brief"}
        said = http.get(f"/v1/context/sessions/{session_id}/interactions").json()
        assert [(i["role"], i["content"]) for i in said["interactions"]] == [("user", "hello")]

    # context:write alone does not speak for a user.
    unproven = make_key(server, "context:write", "context:read")
    async with session(server, unproven) as mcp:
        for name, args in [
            ("remember_preference", {"user_id": "ben", "key": "tone", "value": "long"}),
            ("add_interaction", {"user_id": "ben", "role": "user", "content": "x"}),
            ("forget_user", {"user_id": "ben"}),
        ]:
            refused = await mcp.call_tool(name, args)
            assert refused.is_error, name
            assert "users:assert" in tool_text(refused), tool_text(refused)

    reader = make_key(server, "context:read")
    async with session(server, reader) as mcp:
        for name, args in [
            ("remember_preference", {"user_id": "ben", "key": "tone", "value": "long"}),
            ("add_interaction", {"user_id": "ben", "role": "user", "content": "x"}),
            ("forget_user", {"user_id": "ben"}),
        ]:
            refused = await mcp.call_tool(name, args)
            assert refused.is_error, name
            assert "context:write" in tool_text(refused), tool_text(refused)
    with server.client() as http:
        assert http.get("/v1/context/users/ben").json()["preferences"] == {"tone": "brief"}

    async with session(server, writer) as mcp:
        forgotten = await mcp.call_tool("forget_user", {"user_id": "ben"})
        assert not forgotten.is_error, tool_text(forgotten)
        assert json.loads(tool_text(forgotten))["user_id"] == "ben"
    with server.client() as http:
        assert http.get("/v1/context/users/ben").status_code == 404


def test_mcp_needs_a_key(server: Server) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    anonymous = httpx.post(server.url + "/mcp", json=body, timeout=10)
    assert anonymous.status_code == 401
    wrong = httpx.post(
        server.url + "/mcp", json=body, headers={"Authorization": "Bearer mg_nope"}, timeout=10
    )
    assert wrong.status_code == 401
    assert ADMIN_KEY not in wrong.text
