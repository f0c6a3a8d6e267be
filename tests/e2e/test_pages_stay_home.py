"""No page of data-streams asks anything of a third party, in a real browser.

Headless Chromium loads /docs (Swagger UI) and the status page from the real web process;
every resource the page loaded, and every load its Content-Security-Policy blocked, is
read back from the page: all of them are on the server's own origin. A screenshot of the
docs page is saved under test-output/e2e/.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.system import System
from tests.e2e.conftest import OUTPUT
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

# Collects the URLs the page's Content-Security-Policy refused, from before any script runs.
WATCH_VIOLATIONS = ("window.__blocked = [];document.addEventListener("
                    "'securitypolicyviolation', e => window.__blocked.push(e.blockedURI));")
LOADED = ("return performance.getEntriesByType('resource').map(e => e.name)"
          ".concat(window.__blocked || [])")


@pytest.mark.parametrize(("page", "ready"), [
    ("/docs", "return !!document.querySelector('.swagger-ui .opblock')"),
    ("/", "return !!document.querySelector('#view table, #view .card')")])
def test_a_page_loads_only_from_this_server(browser: Any, system: System, page: str,
                                            ready: str) -> None:
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                            {"source": WATCH_VIOLATIONS})
    browser.get(system.api(page))
    wait_for(lambda: browser.execute_script(ready), timeout=30, what=f"{page} rendered")

    urls = browser.execute_script(LOADED)

    own = urlsplit(system.api("/")).netloc
    assert urls, "the page loaded nothing"
    assert [url for url in urls if not url.startswith("data:")
            and urlsplit(url).netloc != own] == []
    if page == "/docs":
        assert any(url.endswith("/openapi.json") for url in urls)
        assert "data-streams API" in browser.execute_script(
            "return document.querySelector('.swagger-ui .info .title').textContent")
        OUTPUT.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(OUTPUT / "docs.png"))
