"""The console's frame in a real browser: Chinese first, the language switch, the public notice
page, CSRF refusals in Chinese, and axe-core finding nothing serious on any of them."""

from __future__ import annotations

import datetime as dt
import re

from broker.clock import FrozenClock, install_clock
from tests.e2e.test_ledger import program_body
from tests.e2e.test_notices import START, approve_for, at, freeze
from tests.e2e.test_offers import gpu_offer, publish


def test_the_landing_page_is_in_chinese_and_says_what_the_platform_is(page, axe, screenshot):
    response = page.goto("/")
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "上海硅巷资源撮合平台"
    assert "初创企业提供免费或优惠的算力" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="登录平台").get_attribute("href") == "/sign-in"
    # Landmarks and the skip link, for keyboard and screen-reader users.
    assert page.locator("header").count() == 1 and page.locator("main#main").count() == 1
    assert page.locator("footer").count() == 1
    assert axe(page) == []
    screenshot(page, "landing")
    page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    assert page.evaluate("document.activeElement.textContent") == "跳到正文"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_switching_to_english_and_back(page, axe):
    page.goto("/")
    page.get_by_role("button", name="English").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Shanghai Silicon Alley Resource Broker"
    assert page.get_by_role("link", name="Sign in to the platform").count() == 1
    assert axe(page) == []
    page.goto("/no-such-page")  # the choice is kept (a cookie), on every page
    assert page.locator("h1").inner_text() == "Page not found"
    page.get_by_role("button", name="中文").click()
    page.wait_for_url(re.compile(r"/no-such-page$"))
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "页面不存在"


def test_a_form_posted_without_its_csrf_token_is_refused_in_chinese(page, axe):
    page.goto("/")
    page.locator("form.language-switch input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response(lambda r: r.url.endswith("/language")) as answer:
        page.get_by_role("button", name="English").click()
    assert answer.value.status == 400
    assert "缺少安全校验" in page.locator("#error-message").inner_text()
    assert page.locator("html").get_attribute("lang") == "zh-CN"  # and the language was not switched
    assert axe(page) == []


def test_the_public_notice_page(app, client, make_actor, page, axe, screenshot):
    clock = FrozenClock(at(dt.date(2026, 9, 21)))
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        staff, carrier, startup = make_actor("staff"), make_actor("carrier"), make_actor("startup")
        published = publish(client, carrier, gpu_offer("h100", quantity="1000", unit_price="10",
                                                       window_start="2026-09-21", window_end="2026-12-31"))
        assert published.status_code == 200, published.json
        program = client.post("/api/v1/subsidy-programs", json=program_body("browser-voucher", name="模型券"),
                              headers=staff.headers)
        assert program.status_code == 201, program.json
        allocation_id = approve_for(client, staff, startup)
        award = client.get(f"/api/v1/awards?allocation_id={allocation_id}", headers=staff.headers)
        assert award.status_code == 200, award.json
        notice = freeze(client, staff, [a["id"] for a in award.json])
        assert notice.status_code == 201, notice.json
        clock.set(at(START + dt.timedelta(days=1)))
        response = page.goto(f"/notices/{notice.json['id']}")
        assert response.status == 200
        assert page.locator("h1").inner_text() == "2026年第三批模型券拟支持名单公示"
        assert page.locator("#status").inner_text() == "公示进行中。"
        assert "300.00" in page.locator("table").inner_text()
        assert axe(page) == []
        screenshot(page, "notice")
        assert page.goto("/notices/999999").status == 404
        assert page.locator("h1").inner_text() == "未找到该公示"
        assert axe(page) == []
    finally:
        install_clock(app, None)
