"""The carrier page's catalogue (运营商门户 · 资源目录) in a real browser: a person of 中国联通上海分公司
signs in and lands on 资源目录 with its offers, downloads the template, uploads it back as a GBK
CSV with one bad row, sees the preview naming the quarantined row (nothing imported yet), applies
it and sees the result. axe-core finds nothing serious; the screenshots are
docs/screenshots/carrier_catalogue.png and carrier_upload_preview.png.

(中国电信上海分公司's offers come from its API: the telecom adapter takes no catalogue files, so the
upload is shown with Unicom, whose adapter reads them.)"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import sqlalchemy as sa

from adapters.base import CarrierConfig
from broker.clock import FrozenClock, install_clock
from broker.models import Account, Carrier, Offer
from broker.services import accounts, market, people
from broker.services.passwords import hash_password
from config import CarrierSettings
from tests.conftest import make_uscc
from tests.integration.test_sync import FAST, SIMULATED
from tests.browser.support import sign_in

PASSWORD = "联通上海-门户浏览器-2026"
MONDAY_0900 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)


def _unicom(app, session, monkeypatch) -> Carrier:
    carrier, token, _ = accounts.register_carrier(session, "unicom_portal", "中国联通上海分公司", "unicom", ["unicom"])
    carrier.uscc = make_uscc(9301)
    _, _, credentials, environ = SIMULATED["unicom"]
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setitem(app.config["CARRIERS"], carrier.code,
                        CarrierSettings(carrier.code, CarrierConfig("http://127.0.0.1:9", credentials, **FAST)))
    account = session.get(Account, token.account_id)
    for n, (kind, attributes) in enumerate((("gpu", {"gpu_model": "A800", "gpu_memory_gb": 80}),
                                            ("storage", {"tier": "standard"})), start=1):
        market.upsert_offers(session, account, [dict(
            external_id=f"CU-SH-{n:03d}", kind=kind, region="sh", attributes=attributes, quantity=Decimal(800),
            window_start=dt.date(2027, 1, 1), window_end=dt.date(2027, 6, 30), list_price=Decimal("12"),
            unit_price=Decimal("9.5"), divisible=True)])
    return carrier


def test_a_carrier_person_uploads_a_gbk_catalogue_previews_and_applies_it(app, session, page, axe, screenshot,
                                                                          monkeypatch):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)
    try:
        carrier = _unicom(app, session, monkeypatch)
        email = "zhao.qiang@unicom-portal.example.cn"
        person = people.find_or_link(session, carrier.uscc, email, "赵强", "legal_representative", MONDAY_0900)
        person.password_hash = hash_password(PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, email, PASSWORD)
        page.wait_for_url("**/carrier/catalogue")
        assert page.locator("h1").inner_text() == "资源目录"
        assert page.locator("#offers tbody tr").count() == 2
        assert "GPU 算力" in page.locator("#offers").inner_text()
        assert axe(page) == []
        screenshot(page, "carrier_catalogue")

        with page.expect_download() as downloaded:
            page.locator("#template-csv").click()
        template = open(downloaded.value.path(), "rb").read().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(template)))
        assert rows[0][0] == "资源编号" and len(rows) == 2
        bad = list(rows[1])
        bad[0], bad[1] = "CU-SH-GPU-0002", "量子算力"
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([*rows, bad])
        content = out.getvalue().encode("gbk")

        page.get_by_role("link", name="上传资源目录文件").click()
        page.wait_for_url("**/carrier/catalogue/upload")
        page.get_by_label("目录文件").set_input_files(
            files=[{"name": "资源目录.csv", "mimeType": "text/csv", "buffer": content}])
        page.get_by_role("button", name="预览").click()
        page.wait_for_selector("#preview-counts")
        assert "这只是预览" in page.locator("#preview-note").inner_text()
        assert page.locator("#count-new").inner_text() == "1"
        quarantined = page.locator("#quarantined tbody tr")
        assert quarantined.count() == 1
        assert "资源类型无法识别" in quarantined.inner_text() and "第 3 行" in quarantined.inner_text()
        session.expire_all()
        assert session.scalar(sa.select(sa.func.count(Offer.id)).where(Offer.carrier_id == carrier.id)) == 2
        session.commit()
        assert axe(page) == []
        screenshot(page, "carrier_upload_preview")

        page.get_by_role("button", name="确认导入").click()
        page.wait_for_selector("#result-counts")
        assert page.locator("h1").inner_text() == "导入结果"
        assert page.locator("#count-new").inner_text() == "1"
        assert page.locator("#count-quarantined").inner_text() == "1"
        assert axe(page) == []
        session.expire_all()
        assert session.scalar(sa.select(sa.func.count(Offer.id)).where(Offer.carrier_id == carrier.id)) == 3
        session.commit()
    finally:
        install_clock(app, None)
