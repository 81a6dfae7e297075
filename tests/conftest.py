"""Test-wide fixtures: no request may leave the machine."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sandbox.clock import Clock

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NonLoopbackRequest(AssertionError):
    """A test tried to reach a host that is not on this machine."""


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_loopback(address):
        raise NonLoopbackRequest(f"test tried to connect to non-loopback address {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_loopback(address):
        raise NonLoopbackRequest(f"test tried to connect to non-loopback address {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host not in (None, "localhost") and not _is_loopback((host, 0)):
        raise NonLoopbackRequest(f"test tried to resolve non-loopback host {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """Fail any test that connects (or resolves a name) outside loopback."""
    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", _guarded_connect)
    mp.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    mp.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield
    mp.undo()


# -- the emulators, over real HTTP ----------------------------------------------------


class Sandbox:
    """Both emulators running on loopback, plus a config that points at them."""

    def __init__(self, clock: Clock | None = None) -> None:
        from bot.config import config_from_mapping
        from bot.defaults import sandbox_config
        from sandbox.scrip import ScripEmulator
        from sandbox.server import ServerThread
        from sandbox.sfmc import SfmcEmulator

        self.sfmc = SfmcEmulator(clock=clock)
        self.scrip = ScripEmulator(clock=clock)
        self._servers = [ServerThread(self.sfmc.app), ServerThread(self.scrip.app)]
        for server in self._servers:
            server.start()
        self.sfmc_url = self._servers[0].url
        self.scrip_url = self._servers[1].url
        self.mapping = sandbox_config(
            sfmc_url=self.sfmc_url, scrip_url=self.scrip_url, database_url="sqlite://"
        )
        self.config = config_from_mapping(self.mapping, source="test sandbox")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    try:
        yield box
    finally:
        box.stop()
