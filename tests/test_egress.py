"""The suite's guard (tests/egress): a connection off loopback fails, in the test process and in
a process a test starts, and is reported to the fixture that fails the test."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def test_a_connection_off_loopback_fails_and_is_reported(only_loopback: Path) -> None:
    with socket.socket() as s, pytest.raises(OSError, match="only loopback"):
        s.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    with pytest.raises(OSError, match="only loopback"):
        socket.getaddrinfo("example.com", 443)
    code = "import socket\ntry:\n    socket.create_connection(('192.0.2.7', 443), timeout=1)\nexcept OSError as e:\n    print(e)\n"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "only loopback" in child.stdout, child.stdout + child.stderr
    tried = only_loopback.read_text(encoding="utf-8")
    assert "192.0.2.1" in tried and "example.com" in tried and "192.0.2.7" in tried
    only_loopback.unlink()  # seen: this test made them on purpose


def test_loopback_and_this_machine_are_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert socket.getaddrinfo("localhost", 80)
