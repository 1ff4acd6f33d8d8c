"""No connection leaves this machine during the tests. Installed in the test processes by
tests/conftest.py, and in every Python process they start (this directory is put first on
PYTHONPATH, so Python imports this module at start-up): a connect to anything but loopback or
a Unix socket, and a name lookup of anything but this machine, fail with OSError and are
written to the file LEGION_TEST_EGRESS_LOG names, which the tests' fixture reads after each
test (failing it)."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

LOG = "LEGION_TEST_EGRESS_LOG"
LOCAL_NAMES = {"localhost", "", socket.gethostname(), os.uname().nodename}


def _loopback(host: Any) -> bool:
    if host is None or (isinstance(host, str) and host.lower() in LOCAL_NAMES):
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        return address.is_loopback or address.is_unspecified  # 0.0.0.0 and :: are this machine (a bind looks them up)
    except ValueError:
        return text.lower().endswith(".localhost")


def _refuse(what: Any) -> None:
    path = os.environ.get(LOG)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {what!r}\n")
    raise OSError(f"a test tried to reach {what!r}: only loopback is allowed during the tests")


def install() -> None:
    if getattr(socket, "_legion_loopback_only", False):
        return
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _loopback(address[0]):
            _refuse(address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _loopback(address[0]):
            _refuse(address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            _refuse(host)
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]
    socket._legion_loopback_only = True  # type: ignore[attr-defined]


if os.environ.get(LOG):
    install()
