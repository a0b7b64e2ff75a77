"""Browser tests: Debian's chromium, driven by Playwright, against the app served on 127.0.0.1.

The browser is another client of the app, in another thread, so nothing here runs in the
suite's rolled-back transaction: these tests have their own `app` (the same backend as the rest
of the suite, SQLite or PostgreSQL, on a database of their own that they commit to), and every
test in this folder is marked `committing` (and `slow`: chromium is another process). Chromium is Debian's (`apt-get install chromium`;
`.ci/run` installs it); Playwright never downloads a browser. Without /usr/bin/chromium these
tests are skipped on a workstation and FAIL with CI=true, as an unreachable PostgreSQL does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from broker import create_app
from broker.db import get_db
from broker.migrations import upgrade
from tests.browser.support import axe, screenshot

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.committing)
            item.add_marker(pytest.mark.slow)  # each starts a browser page in another process: a second or so


@pytest.fixture(scope="module")
def app(databases, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The browser tests' own app: a fresh, migrated database on the suite's backend, committed to
    for real. One per test module, so one screen's data never changes what another's test sees."""
    url = databases.create()
    app = create_app(
        {
            "BROKER_ENV": "test",
            "DATABASE_URL": url,
            "SECRET_KEY": "browser-test-secret",
            "INSTANCE_PATH": str(tmp_path_factory.mktemp("browser-instance")),
            "WEBHOOK_ALLOWED_HOSTS": ("127.0.0.1",),
        }
    )
    upgrade(get_db(app).engine)
    return app


@pytest.fixture(scope="module")
def live_server(app: Flask) -> Iterator[str]:
    """The app on 127.0.0.1 on a free port, in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        get_db(app).engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the browser tests fail instead of skipping)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, live_server: str):
    """A fresh browser context (no cookies) and page whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server, locale="zh-CN", viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(name="axe")
def axe_fixture():
    """`axe(page)`: the page's serious and critical accessibility violations (tests.browser.support.axe)."""
    return axe


@pytest.fixture(name="screenshot")
def screenshot_fixture():
    """`screenshot(page, name)`: the page saved as docs/screenshots/NAME.png (tests.browser.support.screenshot)."""
    return screenshot
