"""The carrier page's allocations (运营商门户 · 分配) through the test client: the allocations on the
carrier's own offers, the startup's name and contact only on the approved one, filters, the CSV
export; another carrier sees none of them; district staff get 403."""

from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa

from broker.models import Allocation, Carrier, Role, Startup
from broker.services import people
from broker.services.passwords import hash_password
from tests.conftest import make_uscc
from tests.e2e.test_console_sign_in import sign_in
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401 - fixtures

PASSWORD = "长宁区硅巷-运营商分配-2026"


def person_of(session, carrier_id: int, email: str, n: int, now) -> None:
    session.execute(sa.update(Carrier).where(Carrier.id == carrier_id).values(uscc=make_uscc(n)))
    person = people.find_or_link(session, make_uscc(n), email, "孙伟", "legal_representative", now)
    person.password_hash = hash_password(PASSWORD)
    session.commit()


def rows_of(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="allocation-(\d+)"', page)]


def test_a_carrier_sees_its_allocations_and_a_startup_only_once_approved(client, session, market, clock, make_actor):  # noqa: F811
    cycle = run(client, market["staff"])
    mine = list(session.scalars(sa.select(Allocation.id).where(Allocation.cycle_id == cycle["id"]).order_by(Allocation.id)))
    approved = client.post(f"/api/v1/allocations/{mine[0]}/approve", json={}, headers=market["staff"].headers)
    assert approved.status_code == 200
    startup_of = {a.id: a.request.startup for a in session.scalars(sa.select(Allocation).where(Allocation.id.in_(mine)))}
    person_of(session, market["carrier"].carrier_id, "sun.wei@carrier.example.cn", 9201, clock())

    assert sign_in(client, "sun.wei@carrier.example.cn", PASSWORD).status_code == 303
    page = client.get("/carrier/allocations")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert sorted(rows_of(text)) == sorted(mine)
    shown = startup_of[mine[0]]
    row = re.search(rf'<tr id="allocation-{mine[0]}">.*?</tr>', text, re.S).group(0)
    assert shown.name in row and shown.contact_email in row and "已批准" in row
    for other in mine[1:]:
        row = re.search(rf'<tr id="allocation-{other}">.*?</tr>', text, re.S).group(0)
        assert startup_of[other].name not in row and startup_of[other].contact_email not in row and "获批后显示" in row

    assert rows_of(client.get("/carrier/allocations?status=approved").get_data(as_text=True)) == [mine[0]]
    assert rows_of(client.get("/carrier/allocations?kind=storage").get_data(as_text=True)) == []

    exported = client.get("/carrier/allocations.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    assert lines[0][0] == "分配编号" and [int(r[0]) for r in lines[1:]] == sorted(mine)
    by_id = {int(r[0]): r for r in lines[1:]}
    assert by_id[mine[0]][9] == shown.name and all(by_id[o][9] == "" for o in mine[1:])
    assert all(shown.uscc not in ",".join(r) for r in lines)  # nothing else of the startup
    only = client.get("/carrier/allocations.csv?status=approved").get_data().decode("utf-8-sig")
    assert [int(r[0]) for r in list(csv.reader(io.StringIO(only)))[1:]] == [mine[0]]

    # Another carrier sees none of them.
    other = make_actor("carrier")
    person_of(session, other.carrier_id, "qian.li@other-carrier.example.cn", 9202, clock())
    client.post("/sign-out", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)})
    assert sign_in(client, "qian.li@other-carrier.example.cn", PASSWORD).status_code == 303
    assert rows_of(client.get("/carrier/allocations").get_data(as_text=True)) == []
    assert len(list(csv.reader(io.StringIO(client.get("/carrier/allocations.csv").get_data().decode("utf-8-sig"))))) == 1
    assert session.get(Startup, shown.id) is not None


def test_staff_get_403_and_nobody_signed_in_the_sign_in_page(client, session, market):  # noqa: F811
    assert client.get("/carrier/allocations").headers["Location"].startswith("/sign-in?next=/carrier/allocations")
    people.create_district_person(session, "ma.jun@changning.example.gov.cn", "马俊", Role.staff, PASSWORD)
    session.commit()
    assert sign_in(client, "ma.jun@changning.example.gov.cn", PASSWORD).status_code == 303
    assert client.get("/carrier/allocations").status_code == 403
    assert client.get("/carrier/allocations.csv").status_code == 403
