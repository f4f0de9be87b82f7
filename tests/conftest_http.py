"""The `http_server` fixture: a FileServer on 127.0.0.1, shut down after the test.

Use it with `pytest_plugins = ["tests.conftest_http"]` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.httpserver import FileServer


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server
