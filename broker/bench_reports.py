"""`broker bench reports`: how long each district report takes at the server, and what its biggest
export costs, on a district made by `broker bench district` (10,000 startups, 100,000 requests,
1,000,000 allocations, 5,000,000 ledger rows on PostgreSQL).

A benchmark, not a test. For each of the seven reports it times the console page and the API
endpoint (`/api/v1/reports/...`, with a bearer token it issues to the district's staff person)
with the default filters (this quarter), over the whole year, and with a narrowing filter,
through the WSGI app in process like `broker bench console` (one warm-up, then `--repeat`
requests; the median against the budget of 1 s, the SQL statements of a request). Then the biggest
export there is, the utilisation report's allocations over the whole year, as CSV and as XLSX, each
in a fresh child process so that its peak memory is its own, the way staff get it: the 后台导出 form
posted from the report page, then the `run_exports` job writing the file. Its row shows the job's
seconds, the rows read back from the file, its size and the child's peak resident memory, against
60 s and 300 MiB.

It prints the table (Markdown) and exits 1 if any row fails.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from pathlib import Path

import click
import sqlalchemy as sa

from broker.clock import now

from broker.bench_console import CSRF, Row, signed_in, time_urls
from broker.bench_district import STAFF_EMAIL, STAFF_PASSWORD

BUDGET_MS = 1000.0
EXPORT_SECONDS = 60.0
EXPORT_MIB = 300.0

# Per report: the query strings measured besides the default (this quarter). {year} and
# {program} are filled from the data: the year of the latest allocation, the biggest program.
VARIANTS: dict[str, tuple[str, ...]] = {
    "gap": ("{whole_year}", "{whole_year}&kind=gpu&lighthouse=true"),
    "fulfilment": ("{whole_year}", "{whole_year}&sector=ai_models"),
    "spend": ("{whole_year}", "{whole_year}&program={program}&size=small"),
    "utilisation": ("{whole_year}", "{whole_year}&kind=tokens&carrier={carrier}"),
    "carriers": ("{whole_year}", "{whole_year}&carrier={carrier}"),
    "compliance": ("{whole_year}", "{whole_year}&program={program}"),
    "pack": ("year={year}", "year={year}&program={program}"),
}
# The export measured whole, as a background export (后台导出, the run_exports job): the utilisation
# report's allocations over the year.
EXPORTS = ("/staff/reports/utilisation.csv?{whole_year}", "/staff/reports/utilisation.xlsx?{whole_year}")


@dataclass
class ExportRow:
    url: str
    status: int
    seconds: float
    rows: int
    megabytes: float
    peak_mib: float
    verdict: str

    @property
    def failed(self) -> bool:
        return self.verdict != "PASS"


def _facts(engine: sa.Engine) -> dict[str, Any]:
    from broker.models import Allocation

    with engine.connect() as connection:
        latest = connection.execute(sa.select(sa.func.max(Allocation.created_at))).scalar()
        program = connection.execute(sa.text(
            "SELECT program_id FROM subsidy_awards GROUP BY program_id ORDER BY COUNT(*) DESC, program_id LIMIT 1")).scalar()
        carrier = connection.execute(sa.text("SELECT code FROM carriers ORDER BY id LIMIT 1")).scalar()
    year = latest.year if latest else 2026
    return {"year": year, "whole_year": f"start={year}-01-01&end={year}-12-31", "program": program or 1,
            "carrier": carrier or "none"}


def _targets(facts: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for report, variants in VARIANTS.items():
        for query in ("", *variants):
            filled = query.format(**facts)
            for base in (f"/staff/reports/{report}", f"/api/v1/reports/{report}"):
                out.append((f"{report} {'page' if base.startswith('/staff') else 'API'}",
                            f"{base}?{filled}" if filled else base))
    return out


def _api_token(app: Any, email: str) -> str:
    from broker.db import get_session
    from broker.models.people import Person
    from broker.services.accounts import issue_for

    with app.app_context():
        session = get_session()
        person = session.scalars(sa.select(Person).where(Person.email_key == email.lower())).one()
        _token, secret = issue_for(session, person.account)
        session.commit()
        return secret


def measure(database_url: str, repeat: int, email: str, password: str, echo: Any = None) -> list[Row]:
    """Sign in, then time each report's page and API `repeat` times after a warm-up."""
    app, engine, client = signed_in(database_url, email, password)
    try:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {_api_token(app, email)}"
        return time_urls(client, engine, _targets(_facts(engine)), repeat, BUDGET_MS, echo)
    finally:
        engine.dispose()


def measure_export(database_url: str, url: str, email: str, password: str) -> ExportRow:
    """One background export in a child process of its own, the way staff ask for it: the report page's
    后台导出 form posted, then the `run_exports` job writing the file; the job's time, the file's rows
    and size, and the child's peak memory."""
    from scheduler.jobs import run_exports

    app, engine, client = signed_in(database_url, email, password)
    try:
        page, extension = url.split("?")[0], url.split("?")[0].rsplit(".", 1)[1]
        query = url.split("?", 1)[1].format(**_facts(engine))
        report = page.rsplit("/", 1)[1].rsplit(".", 1)[0]
        form = client.get(f"{page.rsplit('.', 1)[0]}?{query}").get_data(as_text=True)
        token = CSRF.search(form)
        asked = client.post(f"/staff/reports/{report}/exports?{query}",
                            data={"format": extension, "csrf_token": token.group(1) if token else ""})
        with app.app_context():
            at = now()
        started = time.perf_counter()
        run_exports(app, at)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        with engine.connect() as connection:
            status, path = connection.execute(sa.text(
                "SELECT status, path FROM export_jobs ORDER BY id DESC LIMIT 1")).one()
    finally:
        engine.dispose()
    done = asked.status_code == 303 and status == "ready"
    size = rows = 0
    if done:
        written = Path(app.instance_path) / path
        size = written.stat().st_size
        with written.open("rb") as kept:
            rows = _rows_in(kept, extension)
    ok = done and seconds < EXPORT_SECONDS and peak < EXPORT_MIB
    return ExportRow(f"{url.split('?')[0]} ({status})", asked.status_code, round(seconds, 1), rows,
                     round(size / 1e6, 1), round(peak, 1), "PASS" if ok else "FAIL")


def _rows_in(kept: Any, extension: str) -> int:
    """The rows the export holds, read back after it was timed: CSV records, or every sheet's rows."""
    import csv
    import io

    if extension == "csv":
        return sum(1 for _row in csv.reader(io.TextIOWrapper(kept, encoding="utf-8-sig", newline="")))
    return _xlsx_rows(kept)


def _xlsx_rows(kept: Any) -> int:
    """The `<row` elements of every worksheet, counted while the parts are decompressed a piece at a
    time (openpyxl's read-only mode would take minutes over a million rows)."""
    import zipfile

    rows = 0
    with zipfile.ZipFile(kept) as book:
        for name in book.namelist():
            if not name.startswith("xl/worksheets/"):
                continue
            tail = b""
            with book.open(name) as part:
                while piece := part.read(1 << 20):
                    rows += (tail + piece).count(b"<row ") - tail.count(b"<row ")
                    tail = piece[-4:]
    return rows


def _in_child(database_url: str, url: str, email: str, password: str) -> ExportRow:
    code = ("import json, sys; from dataclasses import asdict; from broker.bench_reports import measure_export; "
            "print(json.dumps(asdict(measure_export(*sys.argv[1:]))))")
    done = subprocess.run([sys.executable, "-c", code, database_url, url, email, password],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"the export {url} failed in its process:\n{done.stderr[-2000:]}")
    return ExportRow(**json.loads(done.stdout.strip().splitlines()[-1]))


def export_table(rows: list[ExportRow]) -> str:
    lines = ["| export | status | seconds | rows | MB | peak MiB | result |", "|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r.url} | {r.status} | {r.seconds} | {r.rows:,} | {r.megabytes} | {r.peak_mib} | {r.verdict} |"
              for r in rows]
    return "\n".join(lines)


@click.command("reports")
@click.option("--database-url", required=True, help="a district made by `broker bench district` (PostgreSQL)")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 100), help="timed requests per URL")
@click.option("--email", default=STAFF_EMAIL, show_default=True, help="a staff person's email")
@click.option("--password", default=STAFF_PASSWORD, help="that person's password (default: the generator's)")
@click.option("--no-exports", is_flag=True, help="time the pages and the API only")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON instead of tables")
def bench_reports(database_url: str, repeat: int, email: str, password: str, no_exports: bool, as_json: bool) -> None:
    """Time every district report's page and API (budget 1 s) and its biggest export (60 s, 300 MiB)."""
    from broker.bench_console import table

    rows = measure(database_url, repeat, email, password, echo=None if as_json else lambda text: click.echo(text, err=True))
    exports = [] if no_exports else [_in_child(database_url, url, email, password) for url in EXPORTS]
    if as_json:
        click.echo(json.dumps({"urls": [asdict(r) for r in rows], "exports": [asdict(r) for r in exports]},
                              ensure_ascii=False, indent=2))
    else:
        click.echo(table(rows))
        if exports:
            click.echo("")
            click.echo(export_table(exports))
    if any(r.failed or r.status != 200 for r in rows) or any(r.failed for r in exports):
        sys.exit(1)
