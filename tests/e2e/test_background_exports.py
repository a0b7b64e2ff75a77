"""Background report exports (后台导出): a staff person asks for one from the report page, the `run_exports`
job writes it, the person downloads the same file the inline export gives (read back and compared); another
staff person gets 404; the file is deleted when it expires; a failing export is failed, with no file left;
a report over BROKER_EXPORT_INLINE_ROWS offers the background export only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from broker.models import ExportJob, ExportStatus, Role
from broker.services import exports, people
from scheduler import jobs
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.e2e.test_report_fulfilment import district, staff  # noqa: F401  (the report's data, a signed-in person)
from tests.report_data import NOW

PAGE = "/staff/reports/fulfilment"
QUERY = "kind=gpu&lighthouse=true"
TOTAL_GPU_LIGHTHOUSE = ["合计", "2", "2", "1", "1"]  # r1, r9 of tests/report_data.py: gpu and Lighthouse


@pytest.fixture
def colleague(app, session):
    """Another staff person, signed in on a client of their own."""
    person = people.create_district_person(session, "li.ming@changning.example.gov.cn", "李明", Role.staff, PASSWORD)
    session.commit()
    other = app.test_client()
    sign_in(other, person.email, PASSWORD)
    return other


def _ask(client, format_: str, query: str = QUERY):
    token = token_of(client, f"{PAGE}?{query}")
    return client.post(f"/staff/reports/fulfilment/exports?{query}", data={"format": format_, "csrf_token": token})


def _jobs(session) -> list[ExportJob]:
    return list(session.scalars(sa.select(ExportJob).order_by(ExportJob.id).execution_options(populate_existing=True)))


def _files(app) -> set[str]:
    folder = Path(app.instance_path) / "exports"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_a_background_export_is_the_inline_export(app, client, session, district, staff, colleague):  # noqa: F811
    page = client.get(f"{PAGE}?{QUERY}").get_data(as_text=True)
    assert 'id="background-export"' in page and "后台导出" in page and 'id="export-csv"' in page
    assert 'action="/staff/reports/fulfilment/exports?kind=gpu&amp;lighthouse=true"' in page
    for format_ in ("xlsx", "csv"):
        asked = _ask(client, format_)
        assert asked.status_code == 303 and asked.headers["Location"] == "/staff/exports"
    xlsx_job, csv_job = _jobs(session)
    assert (xlsx_job.status, xlsx_job.args, xlsx_job.format, xlsx_job.locale) == (
        ExportStatus.queued, {"kind": "gpu", "lighthouse": "true"}, "xlsx", "zh_CN")
    listed = client.get("/staff/exports").get_data(as_text=True)
    assert listed.count("排队中") == 2 and "需求满足情况" in listed

    jobs.run_exports(app, NOW)

    xlsx_job, csv_job = _jobs(session)
    assert xlsx_job.status == csv_job.status == ExportStatus.ready
    assert re.fullmatch(r"exports/[A-Za-z0-9_-]{24}\.xlsx", xlsx_job.path)
    assert xlsx_job.expires_at == NOW + dt.timedelta(days=7)
    # The inline CSV's lines, less its 6 filter lines and each of its 6 tables' blank, title and header lines.
    assert xlsx_job.rows == csv_job.rows == 9 == len(_inline_csv_rows(client)) - 6 - 6 * 3
    listed = client.get("/staff/exports").get_data(as_text=True)
    assert listed.count("已完成") == 2 and "2026年12月1日 10:00" in listed  # asked at 02:00 UTC, shown in Shanghai
    assert f'href="/staff/exports/{xlsx_job.id}/download"' in listed

    got = client.get(f"/staff/exports/{xlsx_job.id}/download")
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment; filename=fulfilment-2026-10-01-2026-12-31.xlsx" in got.headers["Content-Disposition"]
    inline = client.get(f"{PAGE}.xlsx?{QUERY}")
    assert _sheets(got.get_data()) == _sheets(inline.get_data())
    assert ["合计", 2, 2, 1, 1] == list(_sheets(got.get_data())["需求满足漏斗（期间合计）"][1][:5])
    assert xlsx_job.size == len(got.get_data())

    got_csv = client.get(f"/staff/exports/{csv_job.id}/download")
    assert got_csv.status_code == 200 and got_csv.mimetype == "text/csv"
    assert got_csv.get_data() == client.get(f"{PAGE}.csv?{QUERY}").get_data()
    assert TOTAL_GPU_LIGHTHOUSE == list(csv.reader(io.StringIO(got_csv.get_data().decode("utf-8-sig"))))[9][:5]

    # Another staff person neither sees nor downloads it.
    assert colleague.get(f"/staff/exports/{xlsx_job.id}/download").status_code == 404
    assert "已完成" not in colleague.get("/staff/exports").get_data(as_text=True)


def _inline_csv_rows(client) -> list[list[str]]:
    return list(csv.reader(io.StringIO(client.get(f"{PAGE}.csv?{QUERY}").get_data().decode("utf-8-sig"))))


def _sheets(data: bytes) -> dict[str, list[tuple]]:
    book = load_workbook(io.BytesIO(data))
    return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}


def test_an_expired_export_is_deleted_by_the_job(app, client, session, district, staff):  # noqa: F811
    _ask(client, "csv")
    jobs.run_exports(app, NOW)
    (job,) = _jobs(session)
    file = Path(app.instance_path) / job.path
    assert file.is_file()
    jobs.run_exports(app, NOW + dt.timedelta(days=7) - dt.timedelta(seconds=1))
    assert file.is_file() and _jobs(session)[0].status == ExportStatus.ready
    jobs.run_exports(app, NOW + dt.timedelta(days=7))
    (job,) = _jobs(session)
    assert job.status == ExportStatus.expired and job.path is None and not file.exists()
    assert client.get(f"/staff/exports/{job.id}/download").status_code == 404
    assert "已过期删除" in client.get("/staff/exports").get_data(as_text=True)


def test_an_export_failing_halfway_is_failed_with_no_file(app, client, session, district, staff):  # noqa: F811
    _ask(client, "xlsx")
    before = _files(app)

    def fails_halfway(session_, job, out):
        out.write(b"PK\x03\x04 half a workbook")
        raise OSError("disk full")

    run = exports.run_exports(session, fails_halfway, app.instance_path, NOW, keep=dt.timedelta(days=7))
    (job,) = _jobs(session)
    assert run.failed == [job.id] and run.ready == []
    assert (job.status, job.error, job.path, job.rows) == (ExportStatus.failed, "OSError: disk full", None, None)
    assert _files(app) == before  # no partial file left
    listed = client.get("/staff/exports").get_data(as_text=True)
    assert "导出失败" in listed and "OSError: disk full" in listed and "/download" not in listed


def test_an_export_whose_report_fails_in_the_job_is_failed(app, session, district, staff):  # noqa: F811
    """The filters are checked when asked; a program deleted meanwhile (here: one that never was) fails in the job."""
    person = session.get(type(staff), staff.id)
    exports.queue_export(session, person, "pack", {"program": "999999", "year": "2026"}, "csv", "zh_CN",
                         ["pack"], NOW)
    before = _files(app)
    jobs.run_exports(app, NOW)
    (job,) = _jobs(session)
    assert job.status == ExportStatus.failed and job.error.startswith("NotFound") and job.path is None
    assert _files(app) == before
    jobs.run_exports(app, NOW + dt.timedelta(minutes=1))  # a failed export is not tried again
    assert _jobs(session)[0].finished_at == NOW


def test_a_second_run_never_writes_an_export_twice(app, client, session, district, staff):  # noqa: F811
    _ask(client, "csv")
    first = exports.run_exports(session, app.extensions["broker.export_writer"], app.instance_path, NOW,
                                keep=dt.timedelta(days=7))
    second = exports.run_exports(session, app.extensions["broker.export_writer"], app.instance_path, NOW,
                                 keep=dt.timedelta(days=7))
    assert len(first.ready) == 1 and second.ready == second.failed == []


def test_bad_filters_or_format_are_refused_and_nothing_is_queued(client, session, district, staff):  # noqa: F811
    token = token_of(client, PAGE)
    assert client.post("/staff/reports/fulfilment/exports?start=2026-13-01",
                       data={"format": "xlsx", "csrf_token": token}).status_code == 422
    assert client.post("/staff/reports/fulfilment/exports", data={"format": "pdf", "csrf_token": token}).status_code == 422
    assert client.post("/staff/reports/nothing/exports", data={"format": "csv", "csrf_token": token}).status_code == 404
    assert client.post("/staff/reports/fulfilment/exports", data={"format": "csv"}).status_code == 400  # no CSRF token
    assert _jobs(session) == []


def test_a_report_over_the_inline_limit_is_exported_in_the_background_only(app, client, district, staff, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "EXPORT_INLINE_ROWS", 8)  # the gpu+Lighthouse tables hold 9 rows
    page = client.get(f"{PAGE}?{QUERY}").get_data(as_text=True)
    assert 'id="export-csv"' not in page and 'id="export-too-large"' in page and 'id="background-export"' in page
    refused = client.get(f"{PAGE}.xlsx?{QUERY}")
    assert refused.status_code == 413 and "后台导出" in refused.get_data(as_text=True)
    monkeypatch.setitem(app.config, "EXPORT_INLINE_ROWS", 9)
    assert client.get(f"{PAGE}.xlsx?{QUERY}").status_code == 200
    assert 'id="export-csv"' in client.get(f"{PAGE}?{QUERY}").get_data(as_text=True)


def test_only_staff_ask_and_see_exports(client, session, district, make_actor):  # noqa: F811
    from broker.models.people import CompanyRole, Side
    from broker.services.passwords import hash_password

    assert client.get("/staff/exports").status_code == 302
    startup = make_actor("startup")
    people._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                       side=Side.startup, startup_id=startup.startup_id, company_role=CompanyRole.administrator)
    session.commit()
    sign_in(client, "ceo@startup.example.cn", PASSWORD)
    token = token_of(client, "/me")
    assert client.post(f"/staff/reports/fulfilment/exports?{QUERY}", data={"format": "csv", "csrf_token": token}).status_code == 403
    assert client.get("/staff/exports").status_code == 403


def test_the_job_writes_in_the_language_the_page_was_shown_in(app, client, session, district, staff):  # noqa: F811
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    _ask(client, "csv")
    (job,) = _jobs(session)
    assert job.locale == "en"
    jobs.run_exports(app, NOW)
    got = client.get(f"/staff/exports/{job.id}/download").get_data()
    assert got == client.get(f"{PAGE}.csv?{QUERY}").get_data()  # the inline export, in English too
    rows = list(csv.reader(io.StringIO(got.decode("utf-8-sig"))))
    assert rows[0] == ["Reports", "Fulfilment"] and "需求满足情况" not in got.decode("utf-8-sig")
