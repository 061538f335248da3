"""One real ``meshgate serve`` with the demo models for the SDK tests of this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import PatientServer
from tests.conftest import Server


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = PatientServer({"MESHGATE_DEMO": "true"}, tmp_path_factory.mktemp("sdk") / "data")
    yield running
    running.stop()
