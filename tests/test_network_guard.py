import socket

import httpx
import pytest

from tests.conftest import NonLoopbackRequest


def test_non_loopback_connect_fails_the_test() -> None:
    s = socket.socket()
    try:
        with pytest.raises(NonLoopbackRequest):
            s.connect(("192.0.2.1", 443))
    finally:
        s.close()


def test_http_to_a_public_host_fails() -> None:
    with pytest.raises(NonLoopbackRequest):
        httpx.get("https://example.invalid/", timeout=1)
