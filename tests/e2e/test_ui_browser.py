"""The analyst inbox as a person uses it: Debian's Chromium, driven by Playwright, against
the gateway started as a process on the real PostgreSQL (and Kafka). Screenshots of each
page go to .run/ui/, or to UI_SCREENSHOTS_DIR (`UI_SCREENSHOTS_DIR=docs/ui` refreshes the ones
the README shows). Kept to two browser sessions: the machine's cores are shared."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from tests.conftest import SCOPED_KEYS, Isolated
from tests.processes import ROOT, free_port, running, wait_for
from tests.ui_seed import seed_scope

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
SHOTS = ROOT / os.environ.get("UI_SCREENSHOTS_DIR", ".run/ui")
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "rtl": "Cafe \u202egnp.exe",
    "long": "L" * 2048,
}


@pytest.fixture
def gateway(isolated: Isolated, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **isolated.worker_env("gateway"),
        "PORT": str(port),
        "RATE_LIMIT_RPS": "1000",
        "RATE_LIMIT_BURST": "1000",
        "VERDICT_WAIT_SECONDS": "0",
    }
    with running("ingest_gateway", env, tmp_path / "gateway.log") as worker:
        base = f"http://127.0.0.1:{port}"
        worker.wait_healthy(f"{base}/health")
        yield base
        worker.assert_running()


# Function-scoped and requested after the gateway: Playwright's sync API runs an event loop
# of its own, and pytest-asyncio cannot set up the async fixtures while it runs.
@pytest.fixture
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `bash ops/chromium.sh install` (make test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


class Watched:
    """A page whose dialogs (an alert() that ran) and policy violations are recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.blocked: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.blocked.append(message.text)

    def assert_inert(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.blocked == [], self.blocked


@pytest.fixture
def watched(chromium: Browser) -> Iterator[Watched]:
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    yield Watched(context.new_page())
    context.close()


def assert_accessible(page: Page) -> None:
    """axe-core, run in the page: no serious or critical violation."""
    violations = Axe().run(page).response["violations"]
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in bad]


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/ui/")
    expect(page).to_have_url(f"{base}/ui/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def rows(page: Page) -> Any:
    return page.locator("#alerts tbody tr:not(.empty)")


def test_an_analyst_triages_an_alert_in_the_browser(
    gateway: str, db: Any, watched: Watched
) -> None:
    page = watched.page
    cafe = seed_scope(db, "Cafe Lumen", "food", [420.0, 260.0])
    seed_scope(db, "Hotel Aurora", "travel", [2900.0], severity="critical")

    sign_in(page, gateway, SCOPED_KEYS["ingest"])  # an ingest key cannot sign in
    expect(page.get_by_role("alert")).to_contain_text("lacks the analyst scope")
    assert_accessible(page)
    shoot(page, "sign-in")
    sign_in(page, gateway, SCOPED_KEYS["analyst"])
    expect(page).to_have_url(f"{gateway}/ui/")
    expect(rows(page)).to_have_count(3)
    expect(page.locator('[data-count="open"]')).to_have_text("3")

    page.get_by_label("Merchant").fill("Cafe Lumen")
    page.get_by_role("button", name="Filter").click()
    expect(rows(page)).to_have_count(2)
    (newest,) = seed_scope(db, "Cafe Lumen", "food", [515.0])  # arrives while the page is open
    expect(rows(page).first).to_have_attribute("data-id", newest)
    expect(page.locator("#live")).to_have_text("1 new alert")
    expect(rows(page)).to_have_count(3)
    assert_accessible(page)
    shoot(page, "inbox")

    page.locator(f'a[href="/ui/alerts/{cafe[0]}"]').click()
    expect(page.locator("h1")).to_contain_text("420.0000 USD at Cafe Lumen")
    chart = page.locator("svg#distribution")
    expect(chart).to_be_visible()
    expect(chart.locator('[data-mark="transaction"]')).to_have_count(1)
    expect(chart.locator('[data-mark="high"]')).to_have_count(1)
    expect(page.locator("svg#timeline circle.dot-transaction")).to_have_count(1)
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#status")).to_have_text("acknowledged")
    page.get_by_label("Resolve as").select_option("false_positive")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#status")).to_have_text("resolved (false_positive)")
    expect(page.locator("table.history tbody tr")).to_have_count(
        3
    )  # open→ack, →resolved, resolution
    assert_accessible(page)
    shoot(page, "alert")
    page.get_by_label("Reason").fill("a known promotion")
    # A saved action reloads the page: wait for that reload, or the next goto races it
    # (net::ERR_ABORTED when the reload starts after the goto).
    with page.expect_navigation():
        page.get_by_role("button", name="Create suppression").click()
    suppressions = "SELECT merchant, reason FROM suppressions WHERE expires_at > now()"
    wait_for(
        lambda: db.execute(suppressions).fetchall() == [("Cafe Lumen", "a known promotion")],
        10,
        "the suppression made from the alert page",
    )

    page.goto(f"{gateway}/ui/?status=open")
    expect(rows(page)).to_have_count(3)
    expect(page.locator(f'tr[data-id="{cafe[0]}"]')).to_have_count(0)
    expect(page.locator('[data-count="resolved"]')).to_have_text("1")

    page.get_by_role("link", name="Overview").click()
    expect(page.locator("#false-positive-share")).to_contain_text("100.0 %")
    assert_accessible(page)
    shoot(page, "overview")

    page.set_viewport_size(PHONE)
    page.goto(f"{gateway}/ui/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(page, "inbox-phone")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{gateway}/ui/sign-in")
    page.goto(f"{gateway}/ui/")
    expect(page).to_have_url(f"{gateway}/ui/sign-in")
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 0
    watched.assert_inert()


def test_hostile_names_and_notes_render_as_text_and_csrf_is_required(
    gateway: str, db: Any, watched: Watched
) -> None:
    page = watched.page
    ids = {
        name: seed_scope(db, value, HOSTILE["attribute"] if name == "script" else value, [300.0])[0]
        for name, value in HOSTILE.items()
    }
    sign_in(page, gateway, SCOPED_KEYS["analyst"])
    expect(rows(page)).to_have_count(len(HOSTILE))
    merchants = page.locator("#alerts tbody td:nth-child(5)").all_text_contents()
    assert sorted(merchants) == sorted(HOSTILE.values())
    assert page.locator("#alerts img").count() == 0

    page.goto(f"{gateway}/ui/alerts/{ids['script']}")
    expect(page.locator("#merchant")).to_have_text(HOSTILE["script"])
    expect(page.locator("#category")).to_have_text(HOSTILE["attribute"])
    page.get_by_label("Assign to").fill(HOSTILE["attribute"])
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("#assignee")).to_have_text(HOSTILE["attribute"])
    page.get_by_label("Note").fill(HOSTILE["script"] + HOSTILE["attribute"] + "\u202e")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("table.history tbody td:nth-child(4)").last).to_have_text(
        HOSTILE["script"] + HOSTILE["attribute"] + "\u202e"
    )
    assert page.locator("main img").count() == 0
    page.goto(f"{gateway}/ui/alerts/{ids['long']}")
    expect(page.locator("#merchant")).to_have_text(HOSTILE["long"])

    # The cookie alone cannot change anything: a state change without the token is refused.
    status = page.evaluate(
        """async (id) => (await fetch('/alerts/' + id, {method: 'PATCH',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({status: 'acknowledged'})})).status""",
        ids["rtl"],
    )
    assert status == 403
    assert db.execute("SELECT status FROM alerts WHERE id = %s", (ids["rtl"],)).fetchone() == (
        "open",
    )
    watched.assert_inert()
