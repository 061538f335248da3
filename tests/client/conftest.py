"""One real ``meshgate serve`` with the demo models for the SDK tests of this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server


class DemoServer(Server):
    """The demo trains and converts two models at first start: slow on a busy machine."""

    def wait_ready(self, timeout: float = 240) -> None:
        try:
            super().wait_ready(timeout)
        except RuntimeError:
            self.stop()
            raise


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = DemoServer({"MESHGATE_DEMO": "true"}, tmp_path_factory.mktemp("sdk") / "data")
    yield running
    running.stop()
