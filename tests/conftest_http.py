"""The `http_server` fixture: a FileServer on 127.0.0.1, closed after the test."""

from __future__ import annotations

import pytest

from tests.httpserver import FileServer


@pytest.fixture
def http_server():
    server = FileServer()
    yield server
    server.close()
