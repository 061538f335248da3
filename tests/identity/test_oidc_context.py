"""A user's token loads that user's context, and only that user's: the token's ``sub`` is the
proven end user of inference calls."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from tests.conftest import app_client
from tests.identity.test_oidc import as_user, idp, oidc_settings  # noqa: F401 (fixtures)
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop
from tests.security.conftest import chat
from tests.security.test_identity import alice_and_model


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    loop = UpstreamLoop()
    yield loop.fake("support-model")
    loop.close()


async def test_the_token_subject_is_the_user_whose_context_is_loaded(
    idp,  # noqa: F811
    oidc_settings,  # noqa: F811
    upstream: FakeOpenAI,
) -> None:
    async with app_client(oidc_settings(tenant_claim="org")) as client:
        await alice_and_model(client, upstream)  # alice of tenant acme prefers French
        alice = idp.token(sub="alice", org="acme", scope="inference")
        answered = await client.post(
            "/v1/chat/completions", json=chat("support"), headers=as_user(alice)
        )
        assert answered.status_code == 200, answered.text
        seen_for_alice = orjson.dumps(upstream.requests[-1]).decode()
        assert '"language":"fr"' in seen_for_alice.replace(" ", "").replace('\\"', '"')

        bob = idp.token(sub="bob", org="acme", scope="inference")
        answered = await client.post(
            "/v1/chat/completions", json=chat("support"), headers=as_user(bob)
        )
        assert answered.status_code == 200, answered.text
        assert "fr" not in orjson.dumps(upstream.requests[-1]["messages"][:-1]).decode()

        # A user's token cannot speak for another user.
        calls = upstream.calls()
        refused = await client.post(
            "/v1/chat/completions",
            json=chat("support"),
            headers={**as_user(bob), "x-user-id": "alice"},
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "user_not_proven"
        assert upstream.calls() == calls
