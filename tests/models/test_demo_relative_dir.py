"""`make run` serves from a relative data dir (./data): the demo models must load from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshgate.config import Settings
from tests.conftest import ADMIN_KEY, app_client

IRIS = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]
}


async def test_demo_models_serve_from_a_relative_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("data"), admin_key=ADMIN_KEY, demo=True)
    async with app_client(settings) as client:
        for user in ("alice", "bob", "carol"):
            answer: Any = await client.post(
                "/v2/models/iris/infer", json=IRIS, headers={"x-user-id": user}
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-model-version"] in {"1", "2"}
