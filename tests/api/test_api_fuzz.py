"""schemathesis against `/api/openapi.json` of a real `legion api` process (embedded, a chain
applied): every operation of the document, generated requests valid and invalid, with a fixed
seed; none may answer 5xx. The streaming routes (`/api/events`, `/mcp`) are left out: the one
never ends, the other speaks MCP."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from test_serve import free_port, serve, up

CHAIN = "chain: hello\nsteps:\n  greet:\n    run: core.util.echo\n    with: {message: hi}\n"


def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(tmp_path / "home", "api", "--port", str(port), "--no-auth") as proc:
        up(base, proc)
        httpx.post(base + "/api/chains", content=CHAIN, headers={"Content-Type": "application/yaml"}, timeout=30).raise_for_status()
        done = subprocess.run([st, "run", base + "/api/openapi.json", "--checks", "not_a_server_error", "--max-examples", "25",
                               "--seed", "1", "--exclude-path", "/api/events", "--exclude-path", "/mcp", "--no-color"],
                              capture_output=True, text=True, timeout=600)
    report = done.stdout + done.stderr
    tried = re.search(r"(\d+) generated", report)
    assert tried is not None, report
    print(f"schemathesis tried {tried.group(1)} cases")  # what the closing note quotes
    assert done.returncode == 0, report
    assert int(tried.group(1)) >= 500
    assert "Server error" not in report
