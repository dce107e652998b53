"""T11 over a real server: a huge declared body is refused with 413 before it is read."""
import socket
import time

import pytest

from tests.support.servers import GunicornBridge, bridge_env


@pytest.fixture
def bridge(settings, tmp_path):
    server = GunicornBridge(bridge_env(settings), tmp_path, workers=1)
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["/webhooks/stripe", "/webhooks/paddle"])
def test_413_without_reading_the_body(bridge, path):
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=10) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode() + b"{")
        t0 = time.monotonic()
        answer = s.recv(4096).decode(errors="replace")
        assert time.monotonic() - t0 < 5
    assert answer.startswith("HTTP/1.1 413"), answer[:100]
