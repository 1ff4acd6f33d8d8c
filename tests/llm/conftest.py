"""No connection leaves this machine during the language-model tests: a connect to anything
but loopback (or a Unix socket) fails the test that made it, in this process. (litellm would
otherwise fetch a price list, and a wrong `api_base` would reach the internet.)"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    left: list[Any] = []

    def connect(self: socket.socket, address: Any) -> Any:
        if not _loopback(address):
            left.append(address)
            raise OSError(f"a test tried to connect to {address!r}: only loopback is allowed here")
        return _connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not _loopback(address):
            left.append(address)
            raise OSError(f"a test tried to connect to {address!r}: only loopback is allowed here")
        return _connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield left
    assert left == [], f"connections left loopback: {left}"


@pytest.fixture(autouse=True)
def fresh_guard() -> Iterator[None]:
    """Each test starts with every provider's circuit closed and no rate-limit counts."""
    from legion.extensions.llm import guard

    guard.BREAKER.reset()
    guard.LIMITS.reset()
    yield
    guard.BREAKER.reset()
    guard.LIMITS.reset()
