"""The startup portal's new request wizard (申请资源) through the test client: the quote step shows
the offers of two carriers with the gross, subsidy and net the API's /api/v1/quotes gives for the
same input, each program's eligibility in words and the most the platform lists; submitting creates
exactly the request the API would; bad input is 422 with the field's words and nothing created; a
startup not yet verified is told why and refused; staff get 403; the quote step sends as many SQL
statements for many offers as for one. The request's page then shows its place in the next cycle."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from broker.models import ResourceRequest
from broker.web.formatting import quantity
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_ledger import MONDAY_0900, WINDOW, district, open_program  # noqa: F401 (fixture)
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_staff_appeals import company_person_signed_in, staff_signed_in

FORM = {"kind": "gpu", "quantity": "100", "regions": "sh-changning", "attr-gpu-gpu_model": "H100, A100",
        "max_unit_price": "12", **WINDOW}
API_BODY = {"kind": "gpu", "quantity": "100", "regions": ["sh-changning"], "attributes": {"gpu_model": ["H100", "A100"]},
            "max_unit_price": "12", **WINDOW}


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def money(amount: str) -> str:
    return f"¥{float(amount):,.2f}"


@pytest.fixture
def wizard(app, client, session, district, make_actor):  # noqa: F811
    """Two carriers with H100 lots; a program that pays half on the first carrier's only; the
    startup's founder signed in to the console."""
    second = make_actor("carrier")
    assert publish(client, second, gpu_offer("cu-h100", unit_price="11", quantity="300")).status_code == 200
    open_program(client, district["staff"], "ctc-only", name="电信算力券", rate="0.5",
                 supplier_carrier_ids=[district["carrier"].carrier_id])
    company_person_signed_in(app, client, session, district["startup"].startup_id, "ceo@wizard.example.cn", MONDAY_0900)
    return {**district, "second": second}


def requests_in(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(ResourceRequest))


def test_the_quote_step_shows_both_carriers_with_the_apis_prices_eligibility_and_what_is_listed(client, wizard):
    api = client.post("/api/v1/quotes", json=API_BODY, headers=wizard["startup"].headers).json
    assert {o["carrier"] for o in api["offers"]} == {wizard["carrier"].carrier_code, wizard["second"].carrier_code}

    step2 = client.get("/portal/requests/new/quote?" + urlencode(FORM))

    assert step2.status_code == 200
    page = text(step2)
    for offer in api["offers"]:
        row = re.search(rf'<tr id="offer-{offer["offer_id"]}">(.*?)</tr>', page, re.S).group(1)
        assert re.search(rf'class="gross">{re.escape(money(offer["gross"]))}<', row)
        assert re.search(rf'class="subsidy">{re.escape(money(offer["subsidy"]))}<', row)
        assert re.search(rf'class="net"><strong>{re.escape(money(offer["net"]))}<', row)
    first = next(o for o in api["offers"] if o["carrier"] == wizard["carrier"].carrier_code)
    assert (first["gross"], first["subsidy"], first["net"]) == ("1000.00", "500.00", "500.00")
    # The eligibility per program in words: paid with its rate on the first carrier, not on the second.
    assert "电信算力券：可享受，补贴比例 50%，本单补贴 ¥500.00" in page
    assert "电信算力券：不适用——该运营商不在项目的供应商名单上" in page
    assert "supplier not on" not in page
    # What the platform lists of the kind in the window, whatever the region or model.
    assert f"共 {quantity(Decimal(api['listed_available']))} 卡时 尚未分配（{api['listed_offers']} 个资源" in page
    # The values travel on: the submit form carries them, the edit link returns them.
    assert '<input type="hidden" name="attr-gpu-gpu_model" value="H100, A100">' in page
    assert "/portal/requests/new?" in page and 'id="submit"' in page


def test_submitting_creates_exactly_the_request_the_api_would(client, session, wizard):
    before = requests_in(session)
    token = token_of(client, "/portal/requests/new/quote?" + urlencode(FORM))
    done = client.post("/portal/requests/new", data={**FORM, "purpose": "感知模型训练", "csrf_token": token})
    assert done.status_code == 303
    request_id = int(re.search(r"/portal/requests/(\d+)\?done=submitted$", done.headers["Location"]).group(1))
    assert requests_in(session) == before + 1

    api = client.post("/api/v1/requests", json={**API_BODY, "purpose": "感知模型训练"}, headers=wizard["startup"].headers).json
    mine = client.get(f"/api/v1/requests/{request_id}", headers=wizard["startup"].headers).json
    ignore = {"id", "submitted_at", "updated_at", "created_at"}
    assert {k: v for k, v in mine.items() if k not in ignore} == {k: v for k, v in api.items() if k not in ignore}

    landed = text(client.get(done.headers["Location"]))
    assert "申请已提交" in landed
    # Its place in the next cycle: the compatible supply (1000 + 300 H100 hours) and none ahead
    # (the API's twin has the same priority, so it is not ahead).
    assert "目前与该申请相符、尚未分配的资源共 1,300 卡时（2 个资源）" in landed
    assert "有 0 项其他申请优先于该申请" in landed


def test_a_higher_priority_request_of_the_same_kind_is_counted_ahead(client, session, wizard, make_actor):
    driving = make_actor("startup", sector="smart_driving")  # a Lighthouse sector: weighs double
    assert client.post("/api/v1/requests", json=API_BODY, headers=driving.headers).status_code == 201
    mine = client.post("/api/v1/requests", json=API_BODY, headers=wizard["startup"].headers).json
    page = text(client.get(f"/portal/requests/{mine['id']}"))
    assert "有 1 项其他申请优先于该申请" in page


@pytest.mark.parametrize("change, field, words", [
    ({"quantity": ""}, "quantity", "必填。"),
    ({"quantity": "abc"}, "quantity", "请填写数字。"),
    ({"window_end": "2026-12-01"}, "window_end", "结束日期须晚于开始日期。"),
    ({"min_quantity": "500"}, "min_quantity", "最低数量不能超过申请数量。"),
    ({"attr-gpu-gpu_memory_gb": "lots"}, "attr-gpu-gpu_memory_gb", "请填写整数。"),
    ({"kind": ""}, "kind", "必填。"),
])
def test_bad_input_is_shown_again_with_the_fields_words_and_nothing_is_created(client, session, wizard, change, field, words):
    before = requests_in(session)
    typed = {k: v for k, v in {**FORM, **change}.items() if v}
    quoted = client.get("/portal/requests/new/quote?" + urlencode(typed))
    assert quoted.status_code == 422
    assert f'<span class="field-error" id="{field}-error">{words}</span>' in text(quoted)
    token = token_of(client, "/portal/requests/new")
    posted = client.post("/portal/requests/new", data={**typed, "csrf_token": token})
    assert posted.status_code == 422 and words in text(posted)
    assert requests_in(session) == before


def test_a_window_already_over_is_refused_by_the_service_in_words(client, session, wizard):
    before = requests_in(session)
    token = token_of(client, "/portal/requests/new")
    posted = client.post("/portal/requests/new", data={**FORM, "window_start": "2026-01-01", "window_end": "2026-02-01",
                                                       "csrf_token": token})
    assert posted.status_code == 422
    assert "使用时段已于 2026-02-01 结束" in text(posted)
    assert requests_in(session) == before


def test_a_startup_not_yet_verified_sees_why_and_is_refused(app, client, session, wizard, make_actor):
    pending = make_actor("startup", verified=False)
    company_person_signed_in(app, client, session, pending.startup_id, "ceo@pending.example.cn", MONDAY_0900)
    step2 = text(client.get("/portal/requests/new/quote?" + urlencode(FORM)))
    assert "尚未通过区科委核验（当前状态：待核验）" in step2 and 'id="submit"' not in step2
    before = requests_in(session)
    token = token_of(client, "/portal/requests/new")
    refused = client.post("/portal/requests/new", data={**FORM, "csrf_token": token})
    assert refused.status_code == 403 and "核验通过后才能提交申请" in text(refused)
    assert requests_in(session) == before


def test_staff_get_403_and_nobody_signed_in_goes_to_sign_in(client, session, district):  # noqa: F811
    assert client.get("/portal/requests/new").status_code == 302
    staff_signed_in(client, session)
    assert client.get("/portal/requests/new").status_code == 403
    assert client.get("/portal/requests/new/quote?" + urlencode(FORM)).status_code == 403


def test_the_list_offers_the_wizard_and_the_page_speaks_english(client, wizard):
    assert 'href="/portal/requests/new"' in text(client.get("/portal/requests"))
    client.set_cookie("broker_lang", "en")
    page = text(client.get("/portal/requests/new/quote?" + urlencode(FORM)))
    assert "Net price" in page and "Not eligible" in page
    assert "补贴后价格" not in page and "不适用" not in page


def test_the_quote_step_sends_as_many_statements_for_many_offers_as_for_one(app, client, wizard):
    path = "/portal/requests/new/quote?" + urlencode({**FORM, "regions": "sh-minhang"})
    assert publish(client, wizard["second"], gpu_offer("one", region="sh-minhang", unit_price="10")).status_code == 200
    one = statements_sent(app, client, path)
    assert text(client.get(path)).count('<tr id="offer-') == 1
    assert publish(client, wizard["second"], *[gpu_offer(f"more-{i}", region="sh-minhang", unit_price="10") for i in range(6)]).status_code == 200
    assert publish(client, wizard["carrier"], *[gpu_offer(f"ctc-{i}", region="sh-minhang", unit_price="10") for i in range(4)]).status_code == 200
    many = statements_sent(app, client, path)
    assert text(client.get(path)).count('<tr id="offer-') == 11
    assert len(many) == len(one)
