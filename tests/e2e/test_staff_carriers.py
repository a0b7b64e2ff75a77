"""The carriers screen (运营商) through the test client: every carrier's sync health in words
(healthy, failing since, never synced), live capacity and failed provisioning; one carrier's
sync history, the latest or a chosen sync's quarantined records (reason in Chinese, the record
as sent) and conflicts, delivered capacity, and Retry / Cancel on a failed provisioning. A
cancel without a reason is 422 and changes nothing; a company's person gets 403; an unknown
carrier or sync 404. The SQL statements per page do not grow with the carrier's data."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from broker.models import Allocation, AllocationStatus, CarrierSync, Offer, Role
from broker.models.people import CompanyRole, Side
from broker.services import accounts, people
from broker.services.passwords import hash_password
from tests.carriers_data import MONDAY_0900, build_carriers
from tests.conftest import startup_payload, statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of


@pytest.fixture
def district(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    built = build_carriers(client, session)
    people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    assert sign_in(client, "shen.hui@changning.example.gov.cn", PASSWORD).status_code == 303
    return built


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _row(html: str, row_id: str) -> str:
    return _text(html.split(f'id="{row_id}"')[1].split("</tr>")[0])


def allocations(session, ids) -> list[Allocation]:
    session.expire_all()
    return [session.get(Allocation, i) for i in ids]


def test_the_list_shows_each_carriers_health_capacity_and_failures(client, district):
    codes = district["codes"]
    page = client.get("/staff/carriers")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>运营商</h1>" in html and 'aria-current="page"' in html
    telecom = _row(html, f"carrier-{codes['telecom_sh']}")
    assert "中国电信上海分公司" in telecom and "适配器：telecom" in telecom and "资源来自：定时拉取" in telecom
    assert "2026年11月30日 15:00" in telecom and "成功" in telecom and "正常" in telecom  # 07:00 UTC in Shanghai
    assert "新增 0，变更 1，未变 1，撤下 0，隔离 1，冲突 1" in telecom
    assert "GPU 算力：1 个资源，共 600 卡时，可分配 0" in telecom  # shrunk to what is promised
    assert "大模型 Tokens：1 个资源，共 50,000" in telecom
    assert "2 条待处理" in telecom
    unicom = _row(html, f"carrier-{codes['unicom_sh']}")
    assert "自 2026年11月30日 08:00 起同步失败" in unicom and "无在售资源" in unicom
    assert "从未同步" in _row(html, f"carrier-{codes['cmcc_sh']}")
    assert f'href="/staff/carriers/{codes["telecom_sh"]}"' in html


def test_a_carrier_page_shows_syncs_quarantine_conflicts_delivered_and_failures(client, session, district):
    code = district["codes"]["telecom_sh"]
    html = client.get(f"/staff/carriers/{code}").get_data(as_text=True)
    assert "<h1>中国电信上海分公司</h1>" in html
    syncs = re.findall(r'<tr id="sync-(\d+)"', html)
    assert len(syncs) == 2 and int(syncs[0]) > int(syncs[1])  # newest first
    # The latest sync's details by default: one quarantined record, one conflict.
    details = _text(html.split('id="sync-details"')[1])
    assert "数量或价格超出允许范围" in details and "quantity is negative" in details and "CTC-H100-02" in details
    assert "<details><summary>查看原始记录</summary><pre>{" in html
    assert "运营商下调了数量，已承诺给企业的部分保留" in details and "CTC-H100-01 运营商下调了数量，已承诺给企业的部分保留 400 600" in details
    # The first sync, chosen: the missing field and the unknown kind, in words.
    first = _text(client.get(f"/staff/carriers/{code}?sync={syncs[1]}").get_data(as_text=True).split('id="sync-details"')[1])
    assert "记录缺少必填字段“quantity”。" in first and "资源类型无法识别。" in first and "这次同步没有冲突。" in first
    # Delivered: both approved allocations (provisioning, given up) on the GPU lot.
    delivered = _text(html.split('id="delivered"')[1].split("</table>")[0])
    assert "GPU 算力 2 600 卡时 ¥7,500.00" in delivered
    for allocation_id in district["allocations"]:
        failure = _row(html, f"failure-{allocation_id}")
        assert "5 次" in failure and "运营商返回 503" in failure and "上海" in failure
    assert "开通重试已用完的分配（2 条）" in html


def test_an_unknown_carrier_or_sync_is_404(client, district):
    assert client.get("/staff/carriers/nobody").status_code == 404
    code = district["codes"]["telecom_sh"]
    assert client.get(f"/staff/carriers/{code}?sync=999999").status_code == 404
    assert client.get(f"/staff/carriers/{code}?sync=abc").status_code == 404
    other = district["codes"]["unicom_sh"]
    unicom_sync = client.get(f"/staff/carriers/{other}").get_data(as_text=True)
    sync_id = re.search(r'<tr id="sync-(\d+)"', unicom_sync).group(1)
    assert client.get(f"/staff/carriers/{code}?sync={sync_id}").status_code == 404  # not this carrier's


def test_retry_puts_the_allocation_back_to_be_provisioned(client, session, district):
    code, (first, second) = district["codes"]["telecom_sh"], district["allocations"]
    path = f"/staff/carriers/{code}"
    done = client.post(f"{path}/allocations/{first}/retry", data={"csrf_token": token_of(client, path)})
    assert done.status_code == 303 and done.headers["Location"] == path
    retried, untouched = allocations(session, [first, second])
    assert retried.status is AllocationStatus.provisioning and retried.next_attempt_at is not None
    assert untouched.next_attempt_at is None
    page = client.get(path).get_data(as_text=True)
    assert f"分配 {first} 已重新排队开通" in page and f'id="failure-{first}"' not in page
    again = client.post(f"{path}/allocations/{first}/retry", data={"csrf_token": token_of(client, path)})
    assert again.status_code == 409  # no longer given up: refused with the reason, not a 500
    assert f"分配 {first} 已不在开通失败状态" in again.get_data(as_text=True)


def test_cancel_needs_a_reason_and_without_one_changes_nothing(client, session, district):
    code, (first, _) = district["codes"]["telecom_sh"], district["allocations"]
    path = f"/staff/carriers/{code}"
    promised = session.scalar(sa.select(Offer.promised).where(Offer.external_id == "CTC-H100-01"))
    refused = client.post(f"{path}/allocations/{first}/cancel", data={"csrf_token": token_of(client, path), "reason": "  "})
    assert refused.status_code == 422
    assert "取消必须填写理由" in _row(refused.get_data(as_text=True), f"failure-{first}")
    [unchanged] = allocations(session, [first])
    assert unchanged.status is AllocationStatus.provisioning and unchanged.next_attempt_at is None
    assert session.scalar(sa.select(Offer.promised).where(Offer.external_id == "CTC-H100-01")) == promised
    done = client.post(f"{path}/allocations/{first}/cancel",
                       data={"csrf_token": token_of(client, path), "reason": "运营商资源池长期无容量，改由下一轮撮合"})
    assert done.status_code == 303
    [cancelled] = allocations(session, [first])
    assert cancelled.status is AllocationStatus.cancelled and cancelled.decision_reason.startswith("运营商资源池")
    assert session.scalar(sa.select(Offer.promised).where(Offer.external_id == "CTC-H100-01")) == promised - 300
    assert "资源和补贴已退回" in client.get(path).get_data(as_text=True)


def test_a_company_person_gets_403_and_nobody_the_sign_in_page(app, session, district):
    code = district["codes"]["telecom_sh"]
    first = district["allocations"][0]
    anonymous = app.test_client()
    assert anonymous.get("/staff/carriers").headers["Location"].startswith("/sign-in?next=/staff/carriers")
    startup, _, _ = accounts.register_startup(session, startup_payload(902, parse=True))
    people._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                       side=Side.startup, startup_id=startup.id, company_role=CompanyRole.administrator)
    company = app.test_client()
    sign_in(company, "ceo@startup.example.cn", PASSWORD)
    assert company.get("/staff/carriers").status_code == 403
    assert company.get(f"/staff/carriers/{code}").status_code == 403
    posted = company.post(f"/staff/carriers/{code}/allocations/{first}/retry", data={"csrf_token": token_of(company, "/")})
    assert posted.status_code == 403
    assert allocations(session, [first])[0].next_attempt_at is None


def test_the_pages_cost_a_bounded_number_of_statements(app, client, session, district):
    code = district["codes"]["telecom_sh"]
    telecom_id = session.scalar(sa.select(CarrierSync.carrier_id).order_by(CarrierSync.id))
    def selects(path: str) -> int:
        return len([q for q in statements_sent(app, client, path) if q.lstrip().upper().startswith("SELECT")])

    small = {path: selects(path) for path in ("/staff/carriers", f"/staff/carriers/{code}")}
    for n in range(25):  # many more syncs than a page shows
        session.add(CarrierSync(carrier_id=telecom_id, source="pull", status="succeeded", complete=True,
                                started_at=MONDAY_0900 + dt.timedelta(hours=10 + n)))
    session.commit()
    for path, before in small.items():
        assert selects(path) == before, f"{path}: the statements grew with the data"


def test_the_pages_in_english(client, district):
    client.set_cookie("broker_lang", "en")
    codes = district["codes"]
    listing = _text(client.get("/staff/carriers").get_data(as_text=True))
    assert "Failing since 2026-11-30 08:00" in listing and "Healthy" in listing and "2 waiting" in listing
    page = _text(client.get(f"/staff/carriers/{codes['telecom_sh']}").get_data(as_text=True))
    assert "A quantity or price is out of range" in page and "Retry" in page
    assert "The carrier lowered the quantity; what is promised to companies was kept" in page
