"""The web dashboard, end to end in headless Chromium (Playwright driving Debian's chromium):
a real `legion api` process, a chain applied, started from the page, watched until it ends
live, and a failed step's error opened; a screenshot is kept in artifacts/ (CI keeps it).
Without chromium or playwright it skips, unless CI=true, where it fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
from services import unreachable
from test_serve import ROOT, free_port, serve, up

HELLO = """\
chain: hello
steps:
  greet:
    run: core.util.echo
    with: {message: "hi {{ input.name }}"}
    next:
      - do: shout
  shout:
    run: core.util.echo
    with: {message: "{{ result | upper }}"}
output: {said: "{{ result }}"}
"""

BROKEN = """\
chain: broken
steps:
  fine:
    run: core.util.echo
    with: {message: ok}
    next:
      - do: boom
  boom:
    run: core.util.fail
    with: {message: "the disk is full"}
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "artifacts"


def browser():  # type: ignore[no-untyped-def]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unreachable("playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        unreachable("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return sync_playwright


def test_start_a_run_from_the_dashboard_watch_it_and_open_a_failed_step(tmp_path: Path) -> None:
    sync_playwright = browser()
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(home, "api", "--port", str(port), "--no-auth") as proc:
        up(base, proc)
        for chain in (HELLO, BROKEN):
            assert httpx.post(base + "/api/chains", content=chain, headers={"Content-Type": "application/yaml"}, timeout=30).status_code == 200
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = chromium.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/#/chains")
                page.click("a[data-chain=hello]")
                page.wait_for_selector("[data-test=graph] svg g.step[data-step=shout]")  # the chain drawn
                page.fill("#run-input", '{"name": "ada"}')
                page.click("#start-run")
                page.wait_for_url("**/#/runs/*")
                page.wait_for_selector("[data-status=succeeded]", timeout=30_000)  # live, with no reload
                assert '"said": "HI ADA"' in page.inner_text("[data-test=output]")
                assert page.locator("tbody tr").count() == 2

                page.goto(base + "/#/chains/broken")
                page.click("#start-run")
                page.wait_for_selector("h1 + p [data-status=failed]", timeout=30_000)
                assert "the disk is full" in page.inner_text("[data-test=run-error]")
                page.click("tbody tr:has-text('boom')")
                page.wait_for_selector("[data-test=task-error]")
                assert "the disk is full" in page.inner_text("[data-test=task-detail]")
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "dashboard-failed-step.png"), full_page=True)

                page.goto(base + "/#/chains/hello")
                page.fill("#run-input", "{not json")
                page.click("#start-run")
                assert "not JSON" in page.inner_text("#run-problem")  # nothing is started
                page.goto(base + "/#/runs")
                page.wait_for_selector("a[data-run]")
                assert page.locator("a[data-run]").count() == 2
                page.goto(base + "/#/dead-letters")
                page.wait_for_selector("main h1:has-text('Dead letters')")
                assert "LEGION_AMQP_URL is not set" in page.inner_text("main")
            finally:
                chromium.close()
    assert (ARTIFACTS / "dashboard-failed-step.png").stat().st_size > 10_000


def test_the_dashboard_asks_for_a_token_when_the_server_needs_one(tmp_path: Path) -> None:
    sync_playwright = browser()
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    from cli_helpers import as_json, legion

    token = as_json(legion(home, "token", "create", "--scope", "read", "--json"))["data"]["token"]
    with serve(home, "api", "--port", str(port)) as proc:
        up(base, proc)
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = chromium.new_page()
                page.goto(base + "/#/runs")
                page.wait_for_selector("#token-dialog[open]")
                page.fill("#token-input", token)
                page.click("#token-dialog button[value=save]")
                page.wait_for_selector("main h1:has-text('Runs')")
                assert "No runs yet." in page.inner_text("main")
            finally:
                chromium.close()
    assert os.environ.get("CI") != "true" or CHROMIUM is not None
