"""The status page in a real browser against the real system (web, ingest, worker, beat).

Headless Chromium loads the page, starts a stream with its button, watches batches appear
in the table and the charts (a quarantined one marked), stops it, and saves screenshots
under test-output/e2e/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.system import System
from tests.e2e.conftest import OUTPUT
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

STREAM = "orders-e2e"
BROKEN = "invoices-e2e"
SECRET_HEADER_VALUE = "plain-key-value-e2e"
BATCH_STATUSES = ("return [...document.querySelectorAll('tr[data-testid=batch-row]')]"
                  ".map(row => row.dataset.status)")
BARS = ("return [...document.querySelectorAll('svg[data-chart=' + arguments[0] + '] rect.bar')]"
        ".map(bar => bar.dataset.status)")

# True when every chart has been redrawn at its box's width (charts redraw after a resize).
CHARTS_FIT = ("return [...document.querySelectorAll('svg.chart')].every(svg => "
              "Number(svg.getAttribute('width')) === Math.max(260, svg.parentNode.clientWidth))")


def define(system: System, name: str, url: str, **fields: Any) -> None:
    body = {"source": {"url": url, "records_path": "data",
                       "pagination": {"type": "next_url", "next_url_path": "next"},
                       **fields.pop("source", {})}, "key": "id", **fields}
    response = requests.put(system.api(f"/streams/{name}"), json=body, timeout=10)
    assert response.status_code in (200, 201), response.text


def records(count: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": i, "total": i * 3, **extra} for i in range(start, start + count)]


def script(browser: Any, code: str, *args: Any) -> Any:
    return browser.execute_script(code, *args)


def click(browser: Any, css: str) -> None:
    """Click the element once it is there (the page re-renders parts of itself)."""
    def probe() -> bool:
        return bool(script(browser, "const el = document.querySelector(arguments[0]);"
                                    "if (el && !el.disabled) { el.click(); return true; }"
                                    "return false;", css))
    wait_for(probe, timeout=20, what=f"a clickable {css}")


def text_of(browser: Any, css: str) -> str:
    return str(script(browser, "const el = document.querySelector(arguments[0]);"
                               "return el ? el.textContent : '';", css))


def screenshot(browser: Any, name: str, width: int) -> Path:
    """Save a full-page screenshot at `width` CSS pixels."""
    browser.set_window_size(width, 900)
    height = int(script(browser, "return document.documentElement.scrollHeight"))
    browser.set_window_size(width, min(max(height + 120, 600), 4000))
    wait_for(lambda: script(browser, CHARTS_FIT), timeout=10, what="charts redrawn to fit")
    path = OUTPUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path


def test_start_watch_and_stop_a_stream_from_the_page(browser: Any, system: System,
                                                     upstream: Upstream) -> None:
    upstream.feed(STREAM, records(40), page_size=10, delay=0.05)
    define(system, STREAM, upstream.url(STREAM), interval_seconds=2,
           description="Orders of the demo shop",
           source={"headers": {"X-Api-Key": SECRET_HEADER_VALUE}})
    upstream.feed(BROKEN, records(5))
    define(system, BROKEN, upstream.url(BROKEN), interval_seconds=30,
           source={"auth": {"type": "bearer", "token_env": "DS_SECRET_INVOICES_E2E"}})
    requests.post(system.api(f"/streams/{BROKEN}/start"), timeout=10).raise_for_status()

    browser.set_window_size(1280, 900)
    browser.get(system.api("/"))
    row = f'tr[data-stream="{STREAM}"]'
    click(browser, f'{row} button[data-action="start"]')
    wait_for(lambda: "running" in text_of(browser, f"{row} .badge"), timeout=20,
             what="the row to show the stream running")
    wait_for(lambda: "failed" in text_of(browser, f'tr[data-stream="{BROKEN}"]'),
             timeout=40, what="the broken stream's failure in the overview")

    click(browser, f'{row} a.name')
    wait_for(lambda: script(browser, BATCH_STATUSES).count("complete") >= 3, timeout=60,
             what="three complete batches in the table")
    wait_for(lambda: script(browser, BARS, "records").count("complete") >= 3, timeout=10,
             what="three complete bars in the records chart")
    assert script(browser, BARS, "duration").count("complete") >= 3

    upstream.feed(STREAM, [])
    wait_for(lambda: "quarantined" in script(browser, BATCH_STATUSES), timeout=60,
             what="an empty batch quarantined")
    wait_for(lambda: script(browser, "return document.querySelectorAll("
                                     "'svg[data-chart=records] .m-quarantined').length"),
             timeout=10, what="the quarantined batch marked in the chart")
    upstream.feed(STREAM, records(55, start=10, currency="EUR"), page_size=10, delay=0.05)
    wait_for(lambda: script(browser, BATCH_STATUSES)[0] == "complete", timeout=60,
             what="a complete batch after the quarantined one")

    click(browser, '#stream-links button[data-action="stop"]')
    wait_for(lambda: "stopped" in text_of(browser, "#stream-title"), timeout=20,
             what="the page to show the stream stopped")
    assert requests.get(system.api(f"/streams/{STREAM}"), timeout=10).json()["state"] == "stopped"

    definition = text_of(browser, "#definition")
    assert "X-Api-Key" in definition and "hidden" in definition
    assert SECRET_HEADER_VALUE not in browser.page_source
    shot = screenshot(browser, "stream-page.png", 1280)
    assert shot.stat().st_size > 10_000

    browser.get(system.api(f"/#/streams/{BROKEN}"))
    browser.refresh()
    wait_for(lambda: script(browser, "return document.querySelectorAll("
                                     "'svg[data-chart=records] .m-failed').length"),
             timeout=20, what="the failed batch marked in the chart")
    assert "DS_SECRET_INVOICES_E2E" not in text_of(browser, "#definition")
    assert "auth: environment variable" in text_of(browser, "#batch-rows")
    screenshot(browser, "stream-failing.png", 1280)

    browser.get(system.api("/"))
    wait_for(lambda: text_of(browser, f'tr[data-stream="{STREAM}"]'), timeout=20,
             what="the overview")
    screenshot(browser, "overview.png", 1280)
    screenshot(browser, "overview-narrow.png", 390)
    browser.get(system.api(f"/#/streams/{STREAM}"))
    browser.refresh()
    wait_for(lambda: script(browser, BARS, "records"), timeout=20, what="the charts")
    screenshot(browser, "stream-page-narrow.png", 390)
    requests.post(system.api(f"/streams/{BROKEN}/stop"), timeout=10).raise_for_status()


def test_page_asks_for_the_api_token_to_start_a_stream(browser: Any, system: System,
                                                       upstream: Upstream) -> None:
    from selenium.webdriver.common.by import By

    token, name = "api-token-e2e", "tokened-e2e"
    upstream.feed(name, records(5))
    define(system, name, upstream.url(name), interval_seconds=30)
    guarded = System(system.redis_url, OUTPUT / "logs-token", API_TOKEN=token)
    guarded.start_all(("web",))
    try:
        browser.set_window_size(1280, 900)
        browser.get(guarded.api("/"))
        row = f'tr[data-stream="{name}"]'
        click(browser, f'{row} button[data-action="start"]')
        wait_for(lambda: "API token" in text_of(browser, "#banner"), timeout=20,
                 what="a banner asking for the API token")
        field = browser.find_element(By.ID, "token-input")
        field.send_keys(token)
        browser.find_element(By.CSS_SELECTOR, '#token-form button[type="submit"]').click()
        click(browser, f'{row} button[data-action="start"]')
        wait_for(lambda: "running" in text_of(browser, f"{row} .badge"), timeout=20,
                 what="the stream running once the token is given")
        assert script(browser, "return sessionStorage.getItem('data-streams.token')") == token
        assert token not in browser.page_source
    finally:
        requests.post(system.api(f"/streams/{name}/stop"), timeout=10)
        guarded.stop_all()


ROW_NAMES = ("return [...document.querySelectorAll('tr[data-testid=stream-row]')]"
             ".map(row => row.dataset.stream)")
CHOOSE = ("const el = document.getElementById('state-filter'); el.value = arguments[0];"
          "el.dispatchEvent(new Event('change', {bubbles: true}));")


def test_overview_pages_through_many_streams(browser: Any, system: System) -> None:
    names = [f"page-e2e-{i:02d}" for i in range(60)]
    for name in names:
        define(system, name, "http://127.0.0.1:1/never", interval_seconds=3600)
    requests.post(system.api(f"/streams/{names[7]}/start"), json={"run_now": False},
                  timeout=10).raise_for_status()
    try:
        browser.set_window_size(1280, 900)
        browser.get(system.api("/"))
        first = wait_for(lambda: (rows := script(browser, ROW_NAMES)) and len(rows) == 50
                         and rows, timeout=20, what="a first page of 50 streams")
        assert "page 1" in text_of(browser, "#page-label")

        click(browser, '[data-action="page-next"]')
        second = wait_for(lambda: (rows := script(browser, ROW_NAMES)) and rows != first
                          and rows, timeout=20, what="the second page")
        assert "page 2" in text_of(browser, "#page-label")
        assert sorted(first + second) == first + second and len(set(first + second)) == len(
            first + second)
        assert set(names) <= set(first + second)
        screenshot(browser, "overview-page-2.png", 1280)

        click(browser, '[data-action="page-prev"]')
        wait_for(lambda: script(browser, ROW_NAMES) == first, timeout=20,
                 what="the first page again")
        script(browser, CHOOSE, "running")
        running = wait_for(lambda: (rows := script(browser, ROW_NAMES)) and len(rows) < 50
                           and rows, timeout=20, what="running streams only")
        assert names[7] in running and not set(names[8:]) & set(running)
    finally:
        requests.post(system.api(f"/streams/{names[7]}/stop"), timeout=10)
        for name in names:
            requests.delete(system.api(f"/streams/{name}"), timeout=10)
