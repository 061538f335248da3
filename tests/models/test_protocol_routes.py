"""The routes real clients call: OpenAI's ``models.retrieve``, every Open Inference Protocol
REST route (answers checked against the specification's schemas), V2's error shape on every
``/v2`` path, and tritonclient's server metadata."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import openai
import pytest
import tritonclient.http as triton

from tests.conftest import ADMIN_KEY, Server
from tests.models import oip_rest

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
IRIS_ROW = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}


def valid(instance: Any, schema: dict[str, Any]) -> Any:
    jsonschema.validate(instance, schema)
    return instance


def test_openai_models_retrieve(server: Server, inference_key: str) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=inference_key, max_retries=0)
    model = client.models.retrieve("iris")
    assert (model.id, model.object, model.owned_by) == ("iris", "model", "default")
    assert model.created > 0
    listed = {m.id: m for m in client.models.list()}
    assert listed["iris"].created == model.created
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.code == "model_not_found"


def test_every_oip_route_answers_as_the_specification_says(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=20) as http:
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        for path in ("/v2", "/v2/"):
            meta = valid(http.get(path).json(), oip_rest.SERVER_METADATA)
            assert meta["name"] == "meshgate" and "binary_tensor_data" in meta["extensions"]
        assert http.get("/v2/models/iris/ready").status_code == 200
        assert http.get("/v2/models/iris/versions/1/ready").status_code == 200
        model = valid(http.get("/v2/models/iris").json(), oip_rest.MODEL_METADATA)
        assert model["versions"] == ["1", "2"]
        version = valid(http.get("/v2/models/iris/versions/2").json(), oip_rest.MODEL_METADATA)
        assert version["name"] == "iris"
        for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"):
            answer = http.post(path, json={"inputs": [IRIS_ROW]})
            assert answer.status_code == 200, answer.text
            valid(answer.json(), oip_rest.INFERENCE_RESPONSE)


def test_v2_errors_have_the_v2_shape_on_every_path(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=20) as http:
        answers = {
            "unknown route": http.get("/v2/no/such/route"),
            "unknown model": http.get("/v2/models/no-such-model"),
            "unknown version": http.get("/v2/models/iris/versions/9"),
            "unknown version ready": http.get("/v2/models/iris/versions/9/ready"),
            "unknown model infer": http.post("/v2/models/nope/infer", json={"inputs": []}),
            "no key": http.get("/v2", headers={"Authorization": ""}),
            "wrong method": http.delete("/v2/models/iris"),
            "bad body": http.post("/v2/models/iris/infer", content=b'{"inputs": [}'),
        }
        for what, answer in answers.items():
            assert answer.status_code >= 400, what
            assert answer.headers["content-type"] == "application/json", what
            valid(answer.json(), oip_rest.ERROR)
        assert answers["unknown version ready"].status_code == 404
        assert answers["no key"].status_code == 401


def test_tritonclient_reads_server_metadata_and_version_readiness(server: Server) -> None:
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        meta = client.get_server_metadata(headers=AUTH)
        assert meta["name"] == "meshgate" and meta["version"]
        assert client.is_model_ready("iris", "2", headers=AUTH)
        assert not client.is_model_ready("iris", "9", headers=AUTH)
    finally:
        client.close()
