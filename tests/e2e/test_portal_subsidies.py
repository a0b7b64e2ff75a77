"""The portal's subsidies page (补贴) through the test client: per program the company's committed,
redeemed and left-to-redeem money equal the ledger's balances the API gives the same startup, and
its cap left this year is the cap less what its awards hold; the awards with the evidence their
program asks for; an upload form per missing type that stores the piece (then 待审核, 被退回 with
the reason, 已核验); a too-big or wrong-type file is 422 in Chinese with nothing stored; low-cap and
expiry warnings; another company's award is 404; staff get 403; the page's SQL does not grow with rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io

import pytest
import sqlalchemy as sa

from broker.models import Evidence
from broker.storage import key_for
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_ledger import approve_one, awards_of, district, open_program  # noqa: F401  (fixtures)
from tests.e2e.test_staff_appeals import company_person_signed_in, staff_signed_in

CONTRACT = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Title (portal contract) >> endobj\n"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def unique(data: bytes, tag: str) -> bytes:
    """Bytes of this test's own: the evidence store is shared by the whole test session."""
    return data + f"% {tag} {dt.datetime.now().timestamp()}\n".encode()


@pytest.fixture
def store(app):
    return app.extensions["broker.evidence_store"]


@pytest.fixture
def awarded(client, session, district):  # noqa: F811
    """A voucher paying 40% with a yearly cap of ¥420 per startup, requiring a contract and an
    invoice; one approved allocation of ¥1,000 has its ¥400 award."""
    open_program(client, district["staff"], "voucher", rate="0.4", cap_per_startup="420",
                 evidence_required=["contract", "invoice"])
    allocation = approve_one(client, district)
    district["allocation"] = allocation
    district["award"] = awards_of(session, allocation["id"])["voucher"]
    return district


def signed_in(app, client, session, actor, email="ceo@voucher.example.cn", at=MONDAY_0900):
    return company_person_signed_in(app, client, session, actor.startup_id, email, at)


def upload(client, award_id, type_, data, name="contract.pdf"):
    token = token_of(client, "/portal/subsidies")
    return client.post(f"/portal/subsidies/awards/{award_id}/evidence",
                       data={"csrf_token": token, "type": type_, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def pieces(session, award_id):
    session.expire_all()
    return session.scalars(sa.select(Evidence).where(Evidence.award_id == award_id).order_by(Evidence.id)).all()


def cell(page: str, row_id: str, css: str) -> str:
    row = page.split(f'id="{row_id}"', 1)[1].split("</tr>", 1)[0]
    return row.split(f'class="amount {css}">', 1)[1].split("<", 1)[0]


def test_balances_are_the_ledgers_and_the_cap_left_is_what_approval_counts(app, client, session, awarded):
    startup = awarded["startup"]
    [balance] = client.get("/api/v1/ledger/balances?by=program", headers=startup.headers).json
    assert (balance["committed"], balance["redeemed"]) == ("400.00", "0.00")
    signed_in(app, client, session, startup)
    response = client.get("/portal/subsidies")
    assert response.status_code == 200
    page = text(response)
    assert '<a href="/portal/subsidies" aria-current="page">补贴</a>' in page
    assert cell(page, "program-voucher", "committed") == "¥400.00"
    assert cell(page, "program-voucher", "redeemed") == "¥0.00"
    assert cell(page, "program-voucher", "remaining") == "¥400.00"
    assert cell(page, "program-voucher", "cap-left").startswith("¥20.00 / ¥420.00")
    # ¥20 of ¥420 is under a tenth: the low-cap warning names the program.
    assert 'id="low-voucher"' in page and "本年度可用额度仅剩 ¥20.00" in page
    # The award, its evidence state, and a form per missing type.
    award = awarded["award"]
    assert f'id="award-row-{award.id}"' in page and "¥400.00" in page and "缺 2 项" in page
    assert page.count(f'action="/portal/subsidies/awards/{award.id}/evidence"') == 2
    assert "尚缺：合同、发票" in page
    assert "expiring-" not in page  # the window ends on 20 December, three weeks away


def test_expiry_warning_a_week_before_the_window_ends(app, client, session, awarded, frozen_clock):
    later = dt.datetime(2026, 12, 14, 1, 0, tzinfo=dt.timezone.utc)
    frozen_clock(later)
    signed_in(app, client, session, awarded["startup"], at=later)
    page = text(client.get("/portal/subsidies"))
    assert f'id="expiring-{awarded["award"].id}"' in page
    assert f"分配 {awarded['allocation']['id']} 的使用时段将于 2026年12月20日 结束" in page and "¥400.00 将退回" in page


def test_a_founder_uploads_evidence_and_sees_each_pieces_state(app, client, session, awarded, store):
    award, staff = awarded["award"], awarded["staff"]
    signed_in(app, client, session, awarded["startup"])
    contract = unique(CONTRACT, "portal-contract")
    done = upload(client, award.id, "contract", contract)
    assert done.status_code == 303 and "done=uploaded" in done.headers["Location"]
    [piece] = pieces(session, award.id)
    assert (piece.type.value, piece.status.value, piece.file_name) == ("contract", "pending", "contract.pdf")
    assert store.exists(key_for(hashlib.sha256(contract).hexdigest()))
    page = text(client.get(done.headers["Location"]))
    assert "材料已上传，等待区科委审核。" in page and "待审核" in page and "尚缺：发票" in page
    assert page.count(f'action="/portal/subsidies/awards/{award.id}/evidence"') == 1

    rejected = client.post(f"/api/v1/evidence/{piece.id}/reject", json={"reason": "合同未盖章"}, headers=staff.headers)
    assert rejected.status_code == 200, rejected.json
    page = text(client.get("/portal/subsidies"))
    assert "被退回" in page and "（原因：合同未盖章）" in page and "尚缺：合同、发票" in page

    again = upload(client, award.id, "contract", unique(CONTRACT, "portal-contract-stamped"))
    assert again.status_code == 303
    assert client.post(f"/api/v1/evidence/{pieces(session, award.id)[-1].id}/verify", headers=staff.headers).status_code == 200
    page = text(client.get("/portal/subsidies"))
    assert "已核验" in page and "尚缺：发票" in page


def test_a_too_big_or_wrong_type_file_is_422_in_chinese_and_nothing_is_stored(app, client, session, awarded, store,
                                                                               monkeypatch):
    award = awarded["award"]
    signed_in(app, client, session, awarded["startup"])
    monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", 4096)
    big = unique(CONTRACT, "portal-too-big") + b"0" * 4096
    refused = upload(client, award.id, "contract", big)
    assert refused.status_code == 422
    page = text(refused)
    assert "文件过大：证明材料最大 0.00390625 MB。" in page
    assert 'aria-invalid="true"' in page and "at most" not in page
    wrong = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00 portal-exe"
    refused = upload(client, award.id, "invoice", wrong, name="invoice.exe")
    assert refused.status_code == 422
    assert "文件类型不支持：证明材料只能是 PDF、PNG、JPEG、OFD、XLSX 或 CSV 文件。" in text(refused)
    no_file = client.post(f"/portal/subsidies/awards/{award.id}/evidence",
                          data={"csrf_token": token_of(client, "/portal/subsidies"), "type": "contract"}, content_type="multipart/form-data")
    assert no_file.status_code == 422 and "请选择要上传的文件。" in text(no_file)
    assert pieces(session, award.id) == []
    for data in (big, wrong):
        assert not store.exists(key_for(hashlib.sha256(data).hexdigest()))


def test_another_companys_award_is_404_and_staff_get_403(app, client, session, awarded, make_actor, store):
    other = make_actor("startup")
    signed_in(app, client, session, other, "ceo@other.example.cn")
    page = text(client.get("/portal/subsidies"))
    assert f'id="award-row-{awarded["award"].id}"' not in page and "还没有获得补贴" in page
    assert cell(page, "program-voucher", "committed") == "¥0.00"  # open, nothing of theirs in it
    data = unique(CONTRACT, "portal-other")
    assert upload(client, awarded["award"].id, "contract", data).status_code == 404
    assert pieces(session, awarded["award"].id) == []
    assert not store.exists(key_for(hashlib.sha256(data).hexdigest()))

    with client.session_transaction() as stored:
        stored.clear()
    assert client.get("/portal/subsidies").headers["Location"].startswith("/sign-in?next=")
    staff_signed_in(client, session)
    assert client.get("/portal/subsidies").status_code == 403


def test_the_page_speaks_english(app, client, session, awarded):
    signed_in(app, client, session, awarded["startup"])
    client.set_cookie("broker_lang", "en")
    page = text(client.get("/portal/subsidies"))
    assert "Balance per program" in page and "Cap left this year" in page
    assert "本年度剩余额度" not in page


def test_the_page_does_not_grow_in_sql_statements_with_rows(app, client, session, awarded):
    signed_in(app, client, session, awarded["startup"])
    one = len(statements_sent(app, client, "/portal/subsidies"))
    for _ in range(2):
        approve_one(client, awarded, quantity="1")
    assert text(client.get("/portal/subsidies")).count('id="award-row-') == 3
    assert len(statements_sent(app, client, "/portal/subsidies")) == one
