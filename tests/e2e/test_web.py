"""The web view in a real browser: Debian's chromium, driven by Playwright, looking at a
real ``runner run`` with the API on.

One runner serves the module: an event that fails, one whose runs are skipped (a long
job under ``overlap: forbid``), one in Europe/Berlin, one that only runs when asked, and
a cleanup policy. Each test looks at a page the way a person does (text, marks, buttons)
and saves a screenshot under its ``tmp_path``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.e2e.api_helpers import TOKEN, ApiServer, auth, config_text, data_of, free_port
from tests.e2e.helpers import sh, wait_for

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "hunter2-never-on-a-page"
WAIT_MS = 20_000  # for what the page shows after the runner did something
EVENTS: list[dict[str, Any]] = [
    sh("fails", "echo boom >&2; exit 3", {"every": "2s"}, retry={"attempts": 0}),
    sh("long", "sleep 60", {"every": "1s"}, overlap="forbid", module_id="core.slow"),
    sh(
        "berlin",
        "echo guten tag",
        {"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
        env={"SECRET_TOKEN": SECRET},
        module_id="core.berlin",
    ),
    sh("manual", "echo asked for", {"every": "1w"}, module_id="core.berlin"),
]

# Skipped without chromium, except under CI (which installs it), where that is a failure.
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="needs Debian's chromium (.ci/run installs it)",
)


def _config(port: int, cleanup_dir: Path, events: list[dict[str, Any]] = EVENTS) -> str:
    cleanup = [
        {"name": "old-logs", "directory": str(cleanup_dir), "pattern": "*.log", "retention_days": 1}
    ]
    return config_text(port=port, events=events, cleanup=cleanup)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    cwd = tmp_path_factory.mktemp("web")
    logs = cwd / "logs"
    logs.mkdir()
    old = time.time() - 3 * 86400
    for name in ("a.log", "b.log"):
        (logs / name).write_text("x" * 1000)
        os.utime(logs / name, (old, old))
    (logs / "fresh.log").write_text("kept")
    runner = ApiServer(cwd, free_port())
    runner.write_config(_config(runner.port, logs))
    try:
        runner.start()
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, server: ApiServer) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _executions(server: ApiServer, name: str) -> list[dict[str, Any]]:
    with server.client() as client:
        rows: list[dict[str, Any]] = data_of(
            client.get(f"/api/v1/scheduler/events/{name}/executions", params={"limit": 1000})
        )
        return rows


def _has(server: ApiServer, name: str, outcome: str) -> bool:
    return any(r["outcome"] == outcome for r in _executions(server, name))


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def test_overview_shows_outcomes_next_fires_and_the_timeline(
    page: Page, server: ApiServer, tmp_path: Path
) -> None:
    wait_for(lambda: _has(server, "fails", "failed"), what="a failed run of fails")
    wait_for(lambda: _has(server, "long", "skipped"), what="a skipped occurrence of long")
    page.goto("/")
    expect(page).to_have_title("Events · runner")

    fails = page.locator("tr[data-event=fails]")
    expect(fails.locator("td.last")).to_contain_text("failed")
    expect(fails.locator("td.last .badge.o-failed")).to_be_visible()
    expect(page.locator("tr[data-event=long] td.last")).to_contain_text("skipped")
    berlin = page.locator("tr[data-event=berlin]")
    expect(berlin).to_contain_text("At 02:30 (Europe/Berlin)")
    # December: 02:30 in Berlin is CET, 01:30 UTC.
    expect(berlin.locator("td.next")).to_contain_text("02:30:00 CET")
    expect(berlin.locator("td.next")).to_contain_text("01:30:00 UTC")
    expect(berlin.locator("td.last")).to_contain_text("no run yet")

    config = page.locator("#config")
    expect(config).to_contain_text("scheduler.yaml")
    expect(page.locator("#config-error")).to_have_count(0)

    def row(name: str) -> Locator:
        return page.locator(
            "#timeline .tl-row", has=page.get_by_role("link", name=name, exact=True)
        )

    expect(row("fails").locator(".mark.o-failed").first).to_be_attached()
    expect(row("long").locator(".mark.o-skipped").first).to_be_attached()
    # The next 24 hours hold exactly one fire of the daily Berlin cron.
    expect(row("berlin").locator(".mark.o-next")).to_have_count(1)
    expect(row("berlin")).to_contain_text("Next 24 h: 1 fire.")
    # Every 2 s is more fires than marks: the rest of the day is a band.
    expect(row("fails").locator(".mark.o-band")).to_have_count(1)
    expect(row("fails")).to_contain_text("more than 240 fires in the next 24 h")
    _shot(page, tmp_path, "overview")


def test_filters_narrow_the_list_like_the_api(page: Page, tmp_path: Path) -> None:
    page.goto("/")
    page.get_by_label("Module").select_option("core.berlin")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/\?status=&module_id=core\.berlin$"))
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#events h2")).to_have_text("2 of 4 events")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#events")).to_contain_text("No event matches.")
    _shot(page, tmp_path, "filtered")


def test_event_page_shows_spec_next_fires_and_clock_changes(page: Page, tmp_path: Path) -> None:
    page.goto("/events/berlin")
    expect(page.get_by_role("heading", level=1)).to_have_text("berlin")
    fires = page.locator("#next ol.fires li")
    expect(fires).to_have_count(10)
    expect(fires.first).to_contain_text("02:30:00 CET")
    expect(fires.first).to_contain_text("01:30:00 UTC")
    # 02:30 does not exist in Berlin on the last Sunday of March.
    expect(page.locator("#next .changes")).to_contain_text("does not exist in Europe/Berlin")
    spec = page.locator("pre.spec")
    expect(spec).to_contain_text("cron: 30 2 * * *")
    expect(spec).to_contain_text("echo guten tag")
    assert SECRET not in page.content()
    assert "SECRET_TOKEN" not in page.content()
    _shot(page, tmp_path, "event-berlin")


def test_history_shows_errors_output_tails_and_pages_back(
    page: Page, server: ApiServer, tmp_path: Path
) -> None:
    page.goto("/events/fails")
    # The newest row may still be running; the newest failed one has it all.
    first = page.locator("#history tbody tr", has=page.locator(".badge.o-failed")).first
    expect(first.locator("td.error")).to_contain_text("exit code 3")
    expect(first.locator("td.error details")).to_contain_text("boom")
    expect(first.locator("td.num").last).to_contain_text(" s")
    _shot(page, tmp_path, "event-fails")

    # "long" has one run and a skipped occurrence every second: soon more than a page.
    wait_for(lambda: len(_executions(server, "long")) > 25, timeout=60, what="26 records")
    page.goto("/events/long")
    newest = page.locator("#history tbody tr").first.get_attribute("data-execution")
    page.get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"/events/long\?page=2$"))
    expect(page.locator("#history h2")).to_have_text("History, page 2")
    older = page.locator("#history tbody tr").first.get_attribute("data-execution")
    assert older is not None
    assert newest is not None
    assert int(older) < int(newest)
    expect(page.get_by_role("link", name="Newer")).to_be_visible()


def test_run_now_needs_the_token(page: Page, server: ApiServer, tmp_path: Path) -> None:
    page.goto("/events/manual")
    page.evaluate("window.notReloaded = true")
    expect(page.get_by_text("These buttons need JavaScript")).to_be_hidden()
    expect(page.locator("#history")).to_contain_text("No runs yet.")

    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#action-result")).to_contain_text("Refused: missing or wrong bearer token")
    _shot(page, tmp_path, "run-now-refused")

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#action-result")).to_contain_text("Run requested")
    # The history refreshes by itself, without a reload of the page.
    row = page.locator("#history tbody tr", has_text="manual")
    expect(row).to_contain_text("succeeded", timeout=WAIT_MS)
    assert page.evaluate("window.notReloaded") is True
    expect(row.locator("details")).to_have_count(1)
    runs = _executions(server, "manual")
    assert [r["trigger"] for r in runs] == ["manual"], "the refused press ran nothing"
    _shot(page, tmp_path, "run-now-done")


def test_pause_and_resume_from_the_page(page: Page, tmp_path: Path) -> None:
    page.goto("/events/fails")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#action-result")).to_contain_text("Paused: fails is paused")
    expect(page.locator("#summary")).to_contain_text("paused", timeout=WAIT_MS)
    expect(page.locator("#next")).to_contain_text("None: the event is paused.")
    _shot(page, tmp_path, "paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#action-result")).to_contain_text("Resumed: fails is active")
    expect(page.locator("#summary")).to_contain_text("active", timeout=WAIT_MS)


def test_a_broken_config_edit_shows_its_error_until_fixed(
    page: Page, server: ApiServer, tmp_path: Path
) -> None:
    good = server.config.read_text()
    page.goto("/")
    expect(page.locator("#config-error")).to_have_count(0)
    server.write_config(good.replace("every: 1w", "every: 1 fortnight"))
    try:
        error = page.locator("#config-error")
        expect(error).to_contain_text("not applied", timeout=WAIT_MS)
        expect(error).to_contain_text("scheduler.yaml:")
        expect(error).to_contain_text("every")
        _shot(page, tmp_path, "config-error")
    finally:
        server.write_config(good)
    expect(page.locator("#config-error")).to_have_count(0, timeout=WAIT_MS)


def test_cleanup_page_shows_policies_and_reports(
    page: Page, server: ApiServer, tmp_path: Path
) -> None:
    page.goto("/cleanup")
    policy = page.locator("#policies tbody tr", has_text="old-logs")
    expect(policy).to_contain_text("*.log")
    expect(policy).to_contain_text("1 day")
    with server.client() as client:
        data_of(client.post("/api/v1/scheduler/cleanup/run", headers=auth(), json={}))
    report = page.locator("#reports tbody tr", has_text="old-logs").first
    expect(report.locator("td.num").nth(1)).to_have_text("2", timeout=WAIT_MS)
    expect(report).to_contain_text("2.0 KiB")
    expect(report).to_contain_text("none")
    _shot(page, tmp_path, "cleanup")


def test_pages_read_without_javascript(browser: Browser, server: ApiServer, tmp_path: Path) -> None:
    wait_for(lambda: _has(server, "fails", "failed"), what="a failed run of fails")
    context = browser.new_context(base_url=server.base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/")
        expect(page.locator("tr[data-event=fails] td.last")).to_contain_text("failed")
        page.goto("/events/fails")
        expect(page.get_by_text("These buttons need JavaScript")).to_be_visible()
        expect(page.get_by_role("button", name="Run now")).to_be_disabled()
        # A static page is one snapshot: its newest row may be a run still in progress.
        failed = page.locator("#history tbody tr", has=page.locator(".badge.o-failed")).first
        expect(failed).to_contain_text("exit code 3")
        expect(page.locator("#next ol.fires li")).to_have_count(10)
        _shot(page, tmp_path, "no-javascript")
    finally:
        context.close()


def test_pages_keep_the_host_check_and_hide_secrets(server: ApiServer) -> None:
    for path in ("/", "/events/berlin", "/cleanup"):
        refused = httpx.get(f"{server.base_url}{path}", headers={"Host": "evil.example"})
        assert refused.status_code == 421, (path, refused.status_code)
        shown = httpx.get(f"{server.base_url}{path}")
        assert shown.status_code == 200, (path, shown.text)
        assert SECRET not in shown.text
        assert "default-src 'self'" in shown.headers["content-security-policy"]
    missing = httpx.get(f"{server.base_url}/events/no-such-event")
    assert missing.status_code == 404
    assert "No event named" in missing.text


def test_keyboard_and_landmarks(page: Page, server: ApiServer, tmp_path: Path) -> None:
    page.goto("/events/manual")
    expect(page.get_by_role("banner")).to_be_visible()
    expect(page.get_by_role("navigation", name="Pages", exact=True)).to_be_visible()
    expect(page.get_by_role("main")).to_be_visible()
    expect(page.get_by_role("contentinfo")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()
    # The token field and the buttons are reached and pressed from the keyboard alone.
    page.get_by_label("API token").focus()
    page.keyboard.type(TOKEN)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Run now")).to_be_focused()
    before = len(_executions(server, "manual"))
    page.keyboard.press("Enter")
    expect(page.locator("#action-result")).to_contain_text("Run requested")
    wait_for(lambda: len(_executions(server, "manual")) > before, what="the keyboard's run")
    _shot(page, tmp_path, "keyboard")
