"""The carrier page's syncs (/carrier/syncs) through the test client: the carrier's own sync history,
the latest or a chosen sync's quarantined records (reason in Chinese, the record as sent) and
conflicts, as staff see them on /staff/carriers/<code>, with none of staff's actions; another
carrier's sync is 404; staff and a startup's people get 403; the statements per page do not grow
with the syncs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from adapters.base import FetchResult
from broker.models import Carrier, Role, SyncSource
from broker.models.people import Side
from broker.services import people, sync
from tests.carriers_data import MONDAY_0900, build_carriers, lot
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of

EMAIL = "qian.li@telecom-sh.example.cn"


def carrier_id(session, code: str) -> int:
    return session.scalar(sa.select(Carrier.id).where(Carrier.code == code))


@pytest.fixture
def telecom(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    built = build_carriers(client, session)
    people.create_company_person(session, Side.carrier, carrier_id(session, built["codes"]["telecom_sh"]), EMAIL, "钱力", PASSWORD)
    assert sign_in(client, EMAIL, PASSWORD).status_code == 303
    return built


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def sync_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="sync-(\d+)"', html)]


def test_a_carrier_sees_its_syncs_quarantine_and_conflicts_as_staff_do(client, telecom):
    page = client.get("/carrier/syncs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>同步记录</h1>" in html
    assert 'href="/carrier/syncs" aria-current="page"' in html
    syncs = sync_ids(html)
    assert len(syncs) == 2 and syncs[0] > syncs[1]
    details = _text(html.split('id="sync-details"')[1])
    assert "数量或价格超出允许范围" in details and "quantity is negative" in details and "CTC-H100-02" in details
    assert "<details><summary>查看原始记录</summary><pre>{" in html
    assert "CTC-H100-01 运营商下调了数量，已承诺给企业的部分保留 400 600" in details
    assert f'href="/carrier/syncs?sync={syncs[1]}#sync-details"' in html
    first = _text(client.get(f"/carrier/syncs?sync={syncs[1]}").get_data(as_text=True).split('id="sync-details"')[1])
    assert "记录缺少必填字段“quantity”。" in first and "资源类型无法识别。" in first and "这次同步没有冲突。" in first
    # Staff's actions and what staff alone see are not here.
    assert "/retry" not in html and "/cancel" not in html and "开通失败" not in html and "已交付的资源" not in html


def test_another_carriers_sync_or_a_bad_one_is_404(client, session, telecom):
    unicom = carrier_id(session, telecom["codes"]["unicom_sh"])
    theirs = session.scalar(sa.text("SELECT id FROM carrier_syncs WHERE carrier_id = :c"), {"c": unicom})
    assert client.get(f"/carrier/syncs?sync={theirs}").status_code == 404
    assert client.get("/carrier/syncs?sync=999999").status_code == 404
    assert client.get("/carrier/syncs?sync=abc").status_code == 404


def test_a_carrier_that_never_synced_says_so(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    built = build_carriers(client, session)
    people.create_company_person(session, Side.carrier, carrier_id(session, built["codes"]["cmcc_sh"]),
                                 "zhou.min@cmcc-sh.example.cn", "周敏", PASSWORD)
    assert sign_in(client, "zhou.min@cmcc-sh.example.cn", PASSWORD).status_code == 303
    html = client.get("/carrier/syncs").get_data(as_text=True)
    assert 'id="no-syncs"' in html and 'id="sync-details"' not in html


def test_staff_and_startups_get_403_and_nobody_signed_in_goes_to_sign_in(client, session, make_actor):
    assert client.get("/carrier/syncs").headers["Location"].startswith("/sign-in")
    people.create_district_person(session, "wu.fang@changning.example.gov.cn", "吴芳", Role.staff, PASSWORD)
    assert sign_in(client, "wu.fang@changning.example.gov.cn", PASSWORD).status_code == 303
    assert client.get("/carrier/syncs").status_code == 403
    startup = make_actor("startup")
    people.create_company_person(session, Side.startup, startup.startup_id, "he.jing@startup.example.cn", "何静", PASSWORD)
    client.delete_cookie("broker_session")
    assert sign_in(client, "he.jing@startup.example.cn", PASSWORD).status_code == 303
    assert client.get("/carrier/syncs").status_code == 403


def test_the_english_page(client, telecom):
    switched = client.post("/language", data={"language": "en", "next": "/carrier/syncs",
                                              "csrf_token": token_of(client, "/carrier/syncs")})
    assert switched.status_code == 303
    html = client.get("/carrier/syncs").get_data(as_text=True)
    assert "<h1>Syncs</h1>" in html and "同步记录" not in html


def test_statements_do_not_grow_with_the_syncs(app, client, session, telecom):
    code = telecom["codes"]["telecom_sh"]
    before = len(statements_sent(app, client, "/carrier/syncs"))
    for hour in range(12):
        sync.apply_feed(session, code, SyncSource.pull, FetchResult(code, [lot("CTC-H100-01", "400")], [], complete=False),
                        MONDAY_0900 + dt.timedelta(hours=7 + hour), complete=False)
    session.commit()
    assert len(sync_ids(client.get("/carrier/syncs").get_data(as_text=True))) == 14
    assert len(statements_sent(app, client, "/carrier/syncs")) == before
