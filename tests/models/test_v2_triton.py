"""``tritonclient.http`` against the V2 routes of a real server, on the demo iris classifier."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import ADMIN_KEY, Server

SETOSA, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]


@pytest.fixture(scope="module")
def triton_client(server: Server) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


def auth(key: str = ADMIN_KEY, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def flowers(rows: list[list[float]], dtype: str = "FP32", binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("input", [len(rows), len(rows[0])], dtype)
    tensor.set_data_from_numpy(
        np.array(rows, dtype=np.float32 if dtype == "FP32" else np.float64), binary_data=binary
    )
    return tensor


def test_health_and_metadata(triton_client: triton.InferenceServerClient) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("iris", headers=auth())
    meta = triton_client.get_model_metadata("iris", headers=auth())
    assert meta["name"] == "iris" and meta["versions"] == ["1", "2"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_classifies_in_binary_and_json(
    triton_client: triton.InferenceServerClient, binary: bool
) -> None:
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = triton_client.infer(
        "iris",
        [flowers([SETOSA, VIRGINICA], binary=binary)],
        outputs=outputs,
        headers=auth(**{"x-user-id": "someone"}),
    )
    assert result.as_numpy("label").tolist() == [0, 2]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


def test_versioned_infer_uses_that_version(triton_client: triton.InferenceServerClient) -> None:
    for version in ("1", "2"):
        result = triton_client.infer(
            "iris", [flowers([SETOSA])], model_version=version, headers=auth()
        )
        assert result.get_response()["model_version"] == version
        assert result.as_numpy("label").tolist() == [0]


@pytest.mark.parametrize(
    ("tensor", "fragment"),
    [
        (lambda: flowers([SETOSA], dtype="FP64"), "datatype FP64, expected FP32"),
        (lambda: flowers([SETOSA[:3]]), "shape [1, 3], expected [-1, 4]"),
    ],
)
def test_wrong_inputs_are_400_naming_the_input(
    triton_client: triton.InferenceServerClient, tensor: object, fragment: str
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        triton_client.infer("iris", [tensor()], headers=auth())  # type: ignore[operator]
    assert caught.value.status() == "400"
    assert "input 'input'" in caught.value.message() and fragment in caught.value.message()


def test_malformed_v2_bodies_are_400_with_v2_error_shape(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        cases = [
            (b"{nope", "malformed JSON"),
            (b'{"inputs": 3}', "'inputs' list"),
            (b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],'
             b' "data": [1, 2]}]}', "input 'input'"),
            (b'{"inputs": [{"name": "petals", "datatype": "FP32", "shape": [1, 4],'
             b' "data": [1, 2, 3, 4]}]}', "unknown input 'petals'"),
            (b'{"inputs": []}', "missing input 'input'"),
        ]  # fmt: skip
        for body, fragment in cases:
            response = http.post("/v2/models/iris/infer", content=body)
            assert response.status_code == 400, response.text
            assert fragment in response.json()["error"]
        assert http.post("/v2/models/nothing/infer", content=b"{}").status_code == 404
        version = http.post("/v2/models/iris/versions/9/infer", content=b'{"inputs": []}')
        assert version.status_code == 404


def test_demo_split_is_sticky_by_user(server: Server) -> None:
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": SETOSA}]}
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        for user in [f"u{i}" for i in range(60)]:
            for _ in range(3):
                response = http.post(
                    "/v2/models/iris/infer", json=body, headers={"x-user-id": user}
                )
                assert response.status_code == 200
                seen.setdefault(user, set()).add(response.headers["x-model-version"])
    assert all(len(versions) == 1 for versions in seen.values())
    counts = Counter(next(iter(v)) for v in seen.values())
    assert counts["1"] > counts["2"]  # 90/10 (the exact proportion is tested on the router)
