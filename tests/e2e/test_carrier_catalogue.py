"""The carrier page's catalogue (运营商门户 · 资源目录) through the test client: a carrier's person
lands on it and sees only its own offers, withdraws one (another carrier's: 404), downloads the
template as CSV and XLSX and uploads it back as GBK with one bad row: the preview names the bad
row's reason in Chinese and changes nothing; Apply changes the catalogue and shows the result.
District staff and a startup's person get 403, nobody signed in the sign-in page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from adapters.unicom import TEMPLATE_EXAMPLE, TEMPLATE_HEADER
from broker.models import Carrier, CarrierSync, Offer, OfferStatus, QuarantinedRecord, Role
from broker.services import market, people
from broker.services.passwords import hash_password
from tests.conftest import make_uscc
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_webhooks import carriers  # noqa: F401  (the fixture: three configured carriers)

PASSWORD = "联通上海-资源目录-2026"
NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)


def carrier_person(session, code: str, email: str, n: int):
    """A person of the carrier `code` (its legal representative, given a password), committed."""
    session.execute(sa.update(Carrier).where(Carrier.code == code).values(uscc=make_uscc(n)))
    person = people.find_or_link(session, make_uscc(n), email, "赵强", "legal_representative", NOW)
    person.password_hash = hash_password(PASSWORD)
    session.commit()
    return person


def lot(external_id: str, quantity: str = "100") -> dict:
    return dict(external_id=external_id, kind="gpu", region="sh", attributes={"gpu_model": "A800"},
                quantity=Decimal(quantity), window_start=dt.date(2027, 1, 1), window_end=dt.date(2027, 6, 30),
                list_price=Decimal("12"), unit_price=Decimal("10"), divisible=True)


@pytest.fixture
def catalogue(session, carriers):  # noqa: F811
    """unicom with two offers and a person signed in; telecom with one offer of its own."""
    from broker.models import Account

    mine = market.upsert_offers(session, session.get(Account, carriers["unicom"].account_id), [lot("CU-1"), lot("CU-2")])
    theirs = market.upsert_offers(session, session.get(Account, carriers["telecom"].account_id), [lot("CT-1")])
    person = carrier_person(session, "unicom", "zhao.qiang@unicom.example.cn", 9101)
    return {"mine": [o.id for o in mine["offers"]], "theirs": theirs["offers"][0].id, "person": person}


def signed_in(client, email: str = "zhao.qiang@unicom.example.cn"):
    answer = sign_in(client, email, PASSWORD)
    assert answer.status_code == 303
    return answer


def offer_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="offer-(\d+)"', page)]


def gbk_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("gbk")


def test_a_carrier_person_lands_on_its_own_catalogue_and_withdraws_an_offer(client, session, catalogue):
    assert signed_in(client).headers["Location"] == "/carrier/catalogue"
    page = client.get("/carrier/catalogue")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert sorted(offer_ids(text)) == sorted(catalogue["mine"]) and "CT-1" not in text
    assert "GPU 算力" in text and "只撤到已承诺的数量为止" in text

    withdrawn = client.post(f"/carrier/catalogue/offers/{catalogue['mine'][0]}/withdraw",
                            data={"csrf_token": token_of(client, "/carrier/catalogue")})
    assert withdrawn.status_code == 303
    session.expire_all()
    assert session.get(Offer, catalogue["mine"][0]).status is OfferStatus.withdrawn
    shown = client.get(withdrawn.headers["Location"]).get_data(as_text=True)
    assert "资源已撤下" in shown
    active = client.get("/carrier/catalogue?status=active").get_data(as_text=True)
    assert offer_ids(active) == [catalogue["mine"][1]]
    assert offer_ids(client.get("/carrier/catalogue?kind=cpu").get_data(as_text=True)) == []

    again = client.post(f"/carrier/catalogue/offers/{catalogue['mine'][0]}/withdraw",
                        data={"csrf_token": token_of(client, "/carrier/catalogue")})
    assert again.status_code == 409 and "该资源已撤下" in again.get_data(as_text=True)


def test_another_carriers_offer_is_404_and_left_alone(client, session, catalogue):
    signed_in(client)
    answer = client.post(f"/carrier/catalogue/offers/{catalogue['theirs']}/withdraw",
                         data={"csrf_token": token_of(client, "/carrier/catalogue")})
    assert answer.status_code == 404
    assert client.post("/carrier/catalogue/offers/999999/withdraw",
                       data={"csrf_token": token_of(client, "/carrier/catalogue")}).status_code == 404
    session.expire_all()
    assert session.get(Offer, catalogue["theirs"]).status is OfferStatus.active


def test_the_templates_have_chinese_headers_with_units_and_an_example_the_upload_reads(client, session, catalogue):
    signed_in(client)
    as_csv = client.get("/carrier/catalogue/template.csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(as_csv.get_data().decode("utf-8-sig"))))
    assert rows == [list(TEMPLATE_HEADER), list(TEMPLATE_EXAMPLE)]
    assert "可售数量（数量 单位，如 500 GPU时）" in rows[0]
    as_xlsx = client.get("/carrier/catalogue/template.xlsx")
    assert as_xlsx.status_code == 200
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(as_xlsx.get_data())).worksheets[0]
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == rows

    # The template as downloaded previews as one new offer, nothing quarantined.
    preview = client.post("/carrier/catalogue/upload", content_type="multipart/form-data", data={
        "csrf_token": token_of(client, "/carrier/catalogue/upload"),
        "file": (io.BytesIO(as_xlsx.get_data()), "模板.xlsx")})
    assert preview.status_code == 200
    assert re.search(r'id="count-new">1<', preview.get_data(as_text=True))


def test_a_gbk_csv_is_previewed_without_changing_anything_then_applied(client, session, catalogue):
    signed_in(client)
    bad = list(TEMPLATE_EXAMPLE)
    bad[0], bad[1] = "CU-SH-GPU-0002", "量子算力"
    changed = list(TEMPLATE_EXAMPLE)
    changed[0], changed[4] = "CU-2", "300 GPU时"
    content = gbk_file([list(TEMPLATE_HEADER), list(TEMPLATE_EXAMPLE), bad, changed])
    before = (session.scalar(sa.select(sa.func.count(Offer.id))), session.scalar(sa.select(sa.func.count(CarrierSync.id))))

    preview = client.post("/carrier/catalogue/upload", content_type="multipart/form-data", data={
        "csrf_token": token_of(client, "/carrier/catalogue/upload"), "file": (io.BytesIO(content), "目录.csv")})
    assert preview.status_code == 200
    text = preview.get_data(as_text=True)
    assert "这只是预览" in text and "gb18030" in text
    assert re.search(r'id="count-new">1<', text) and re.search(r'id="count-quarantined">1<', text)
    assert "资源类型无法识别" in text and "第 3 行" in text and "CU-SH-GPU-0002" in text
    changes = re.findall(r'<tr id="change-\d+"><th scope="row">([^<]+)</th><td>([^<]+)</td>\s*<td>([^<]+)</td>', text)
    assert [(i, c, q.split()) for i, c, q in changes] == [
        ("CU-SH-GPU-0001", "新增", ["500", "卡时"]), ("CU-2", "变更", ["100", "→", "300", "卡时"])]
    session.expire_all()
    assert (session.scalar(sa.select(sa.func.count(Offer.id))), session.scalar(sa.select(sa.func.count(CarrierSync.id)))) == before
    assert session.scalar(sa.select(sa.func.count(QuarantinedRecord.id))) == 0
    assert session.scalar(sa.select(Offer.quantity).where(Offer.external_id == "CU-2")) == Decimal(100)

    kept = re.search(r'name="kept" value="([0-9a-f]{64}\.csv)"', text).group(1)
    applied = client.post("/carrier/catalogue/upload/apply",
                          data={"csrf_token": token_of(client, "/carrier/catalogue/upload"), "kept": kept})
    assert applied.status_code == 303
    result = client.get(applied.headers["Location"])
    assert result.status_code == 200
    shown = result.get_data(as_text=True)
    assert "导入结果" in shown and "资源类型无法识别" in shown
    assert re.search(r'id="count-new">1<', shown) and re.search(r'id="count-changed">1<', shown)
    session.expire_all()
    assert session.scalar(sa.select(Offer.quantity).where(Offer.external_id == "CU-2")) == Decimal(300)
    assert session.scalar(sa.select(Offer.id).where(Offer.external_id == "CU-SH-GPU-0001")) is not None
    assert session.scalar(sa.select(sa.func.count(QuarantinedRecord.id))) == 1

    # The kept file is used once; a made-up name is refused, changing nothing.
    assert client.post("/carrier/catalogue/upload/apply", data={
        "csrf_token": token_of(client, "/carrier/catalogue/upload"), "kept": kept}).status_code == 422
    assert client.post("/carrier/catalogue/upload/apply", data={
        "csrf_token": token_of(client, "/carrier/catalogue/upload"), "kept": "../x.csv"}).status_code == 422


def test_a_file_without_the_columns_or_not_a_catalogue_is_refused_with_nothing_changed(client, session, catalogue):
    signed_in(client)
    syncs = session.scalar(sa.select(sa.func.count(CarrierSync.id)))
    token = token_of(client, "/carrier/catalogue/upload")
    lacking = client.post("/carrier/catalogue/upload", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO("资源编号,地域\r\nX,上海\r\n".encode("gbk")), "x.csv")})
    assert lacking.status_code == 422 and "文件缺少必需的列" in lacking.get_data(as_text=True)
    other = client.post("/carrier/catalogue/upload", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(b"hello"), "x.txt")})
    assert other.status_code == 422 and "只接受 CSV 或 XLSX 文件" in other.get_data(as_text=True)
    none = client.post("/carrier/catalogue/upload", data={"csrf_token": token})
    assert none.status_code == 422
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count(CarrierSync.id))) == syncs


def test_another_carriers_upload_result_is_404(client, session, catalogue, carriers):  # noqa: F811
    signed_in(client)
    theirs = CarrierSync(carrier_id=carriers["telecom"].carrier_id, source="upload", status="succeeded",
                         complete=False, started_at=NOW)
    session.add(theirs)
    session.commit()
    assert client.get(f"/carrier/catalogue/uploads/{theirs.id}").status_code == 404
    assert client.get("/carrier/catalogue/uploads/999999").status_code == 404


def test_other_sides_get_403_and_nobody_signed_in_the_sign_in_page(client, session, catalogue, make_actor):
    assert client.get("/carrier/catalogue").headers["Location"].startswith("/sign-in?next=/carrier/catalogue")
    people.create_district_person(session, "wu.lei@changning.example.gov.cn", "吴磊", Role.staff, PASSWORD)
    session.commit()
    signed_in(client, "wu.lei@changning.example.gov.cn")
    for path in ("/carrier/catalogue", "/carrier/catalogue/template.csv", "/carrier/catalogue/upload"):
        assert client.get(path).status_code == 403
    assert client.post(f"/carrier/catalogue/offers/{catalogue['mine'][0]}/withdraw",
                       data={"csrf_token": token_of(client, "/")}).status_code == 403
    session.expire_all()
    assert session.get(Offer, catalogue["mine"][0]).status is OfferStatus.active

    from broker.models import Startup

    startup = session.get(Startup, make_actor("startup").startup_id)
    person = people.find_or_link(session, startup.uscc, "fa.ren@example.cn", "王芳", "legal_representative", NOW)
    person.password_hash = hash_password(PASSWORD)
    session.commit()
    client.post("/sign-out", data={"csrf_token": token_of(client, "/")})
    signed_in(client, "fa.ren@example.cn")
    assert client.get("/carrier/catalogue").status_code == 403
