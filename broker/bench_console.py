"""`broker bench console`: how long every staff console page takes at the server, on a big district.

A benchmark, not a test: it builds the app on the given database (a district made by `broker
bench district`), signs in as its staff person through the sign-in form, finds EVERY staff page
itself (each GET rule of the app whose endpoint starts with `staff_`, so a screen added later is
measured without being named here), fills each URL's parameters with a heavy real sample from
the data (the latest cycle awaiting decisions, the startup with the most allocations, …), adds a
few query-string variants of list pages (page 2, a filter), warms each up once and then times it
`--repeat` times through the WSGI app in process, counting the SQL statements each request runs
(a page whose warm-up already took over 3 s is timed by that one request).

It prints one row per page: endpoint, URL, status, median and max milliseconds, statements, and
PASS or FAIL against the budget (300 ms); it exits 1 if any page fails or answers other than 200.
A download (a URL ending in .xlsx or .csv: a whole statement as a spreadsheet) is not a page: it
is timed by one request and its row says "download", failing only if it does not answer 200.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import click
import sqlalchemy as sa

BUDGET_MS = 300.0
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
DOWNLOAD = re.compile(r"\.(xlsx|csv)$")

# A URL parameter -> the query that picks its sample: the heaviest realistic one, or just one that exists.
SAMPLES: dict[str, str] = {
    "cycle_id": "SELECT COALESCE((SELECT MAX(id) FROM matching_cycles WHERE status = 'proposed'), "
                "(SELECT MAX(id) FROM matching_cycles))",
    "startup_id": "SELECT r.startup_id FROM allocations a JOIN resource_requests r ON r.id = a.request_id "
                  "GROUP BY r.startup_id ORDER BY COUNT(*) DESC, r.startup_id LIMIT 1",
    "carrier_id": "SELECT carrier_id FROM offers GROUP BY carrier_id ORDER BY COUNT(*) DESC, carrier_id LIMIT 1",
    "code": "SELECT c.code FROM carriers c JOIN offers o ON o.carrier_id = c.id "
            "GROUP BY c.code ORDER BY COUNT(*) DESC, c.code LIMIT 1",
    "program_id": "SELECT program_id FROM subsidy_awards GROUP BY program_id ORDER BY COUNT(*) DESC, program_id LIMIT 1",
    "program_code": "SELECT p.code FROM subsidy_programs p JOIN subsidy_awards a ON a.program_id = p.id "
                    "GROUP BY p.code ORDER BY COUNT(*) DESC, p.code LIMIT 1",
    "appeal_id": "SELECT id FROM appeals ORDER BY status = 'open' DESC, id DESC LIMIT 1",
    "person_id": "SELECT MAX(id) FROM people",
    # The notice with the most awards, and the statement with the most lines (the newest of equals).
    "notice_id": "SELECT notice_id FROM subsidy_notice_items GROUP BY notice_id ORDER BY COUNT(*) DESC, notice_id DESC LIMIT 1",
    "statement_id": "SELECT statement_id FROM settlement_lines GROUP BY statement_id "
                    "ORDER BY COUNT(*) DESC, statement_id DESC LIMIT 1",
    "allocation_id": "SELECT MAX(id) FROM allocations WHERE status = 'proposed'",
    "request_id": "SELECT request_id FROM allocations GROUP BY request_id ORDER BY COUNT(*) DESC, request_id LIMIT 1",
    "offer_id": "SELECT offer_id FROM allocations GROUP BY offer_id ORDER BY COUNT(*) DESC, offer_id LIMIT 1",
    "award_id": "SELECT MAX(id) FROM subsidy_awards",
    "sync_id": "SELECT id FROM carrier_syncs ORDER BY quarantined DESC, id DESC LIMIT 1",
    "account_id": "SELECT MAX(account_id) FROM people",
    "invitation_id": "SELECT MAX(id) FROM invitations",
}

# Query strings also measured on pages without URL parameters: the next page, and a filter where
# the page's own is known (an unknown argument is ignored by the page, and still costs its render).
LIST_VARIANTS = ("page=2",)
FILTERS: dict[str, tuple[str, ...]] = {
    "staff_review.queue": ("kind=gpu", "sector=smart_driving&key=yes"),
    "staff_audit.audit": ("entity_type=allocations", "action=approve&page=3"),
    "staff_startups.startups": ("sector=ai_models", "status=pending"),
    "staff_carriers.carriers": ("status=failed",),
    "staff_appeals.appeals": ("status=open",),
    "staff_people.people": ("side=startup",),
}


@dataclass
class Row:
    endpoint: str
    url: str
    status: int | None
    median_ms: float | None
    max_ms: float | None
    statements: int | None
    verdict: str  # PASS, FAIL, or "skipped: …"

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"


def _samples(engine: sa.Engine, names: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in sorted(names & set(SAMPLES)):
        with engine.connect() as connection:  # one connection each: a table that is not there fails alone
            try:
                value = connection.execute(sa.text(SAMPLES[name])).scalar()
            except sa.exc.DBAPIError:
                value = None
        if value is not None:
            found[name] = value
    return found


def staff_pages(app: Any) -> list[tuple[str, list[str]]]:
    """Every staff GET rule: (endpoint, its URL parameters), in URL order."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("staff_") and "GET" in (r.methods or ())]
    return sorted(((r.endpoint, sorted(r.arguments)) for r in rules), key=lambda item: item[0])


def _targets(app: Any, engine: sa.Engine) -> list[tuple[str, str | None, str | None]]:
    """(endpoint, url, why skipped) for each page and variant to measure."""
    pages = staff_pages(app)
    samples = _samples(engine, {name for _endpoint, names in pages for name in names})
    adapter = app.url_map.bind("localhost")
    out: list[tuple[str, str | None, str | None]] = []
    for endpoint, names in pages:
        missing = [name for name in names if name not in samples]
        if missing:
            out.append((endpoint, None, f"skipped: no sample for {', '.join(missing)}"))
            continue
        url = adapter.build(endpoint, {name: samples[name] for name in names})
        out.append((endpoint, url, None))
        if not names:
            out += [(endpoint, f"{url}?{query}", None) for query in (*LIST_VARIANTS, *FILTERS.get(endpoint, ()))]
    return out


def signed_in(database_url: str, email: str, password: str) -> tuple[Any, sa.Engine, Any]:
    """The app on the district's database, its engine, and a test client signed in as `email`
    (the caller disposes of the engine)."""
    from broker import create_app
    from broker.db import get_db

    app = create_app({"BROKER_ENV": "test", "DATABASE_URL": database_url, "SECRET_KEY": "bench",
                      "INSTANCE_PATH": tempfile.mkdtemp(prefix="broker-bench-")})
    engine = get_db(app).engine
    client = app.test_client()
    try:
        sign_in(client, email, password)
    except click.ClickException:
        engine.dispose()
        raise
    return app, engine, client


def sign_in(client: Any, email: str, password: str) -> None:
    form = client.get("/sign-in").get_data(as_text=True)
    token = CSRF.search(form)
    answer = client.post("/sign-in", data={"email": email, "password": password,
                                           "csrf_token": token.group(1) if token else ""})
    if answer.status_code != 303:
        raise click.ClickException(f"signing in as {email} answered {answer.status_code}: is this a district made "
                                   "by `broker bench district` (or give --email and --password)?")


def measure(database_url: str, repeat: int, email: str, password: str, echo: Any = None,
            skip: tuple[str, ...] = ()) -> list[Row]:
    """Sign in and time every staff page `repeat` times after one warm-up; one Row per URL (an
    endpoint in `skip` gets a row saying so, unmeasured)."""
    app, engine, client = signed_in(database_url, email, password)
    try:
        rows = []
        for endpoint, url, skipped in _targets(app, engine):
            if endpoint in skip:
                skipped = "skipped: --skip"
            if url is None or skipped:
                rows.append(Row(endpoint, url or "", None, None, None, None, skipped or "skipped"))
                continue
            rows += time_urls(client, engine, [(endpoint, url)], repeat, BUDGET_MS, echo)
        return rows
    finally:
        engine.dispose()


def time_urls(client: Any, engine: sa.Engine, targets: list[tuple[str, str]], repeat: int, budget_ms: float,
              echo: Any = None) -> list[Row]:
    """Each (label, url) fetched once to warm up, then `repeat` times (a page whose warm-up took
    over ten budgets, or a download, by that one request); its median against `budget_ms`."""
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        rows = []
        for label, url in targets:
            if echo:
                echo(f"{label} {url}")
            statements[0] = 0
            started = time.perf_counter()
            answer = _fetched(client, url)  # warm-up: templates compiled, statement caches filled
            warm_up = (time.perf_counter() - started) * 1000
            times, status, queries = [], answer.status_code, statements[0]
            download = DOWNLOAD.search(url) is not None
            for _ in range(repeat if warm_up < 10 * budget_ms and not download else 0):
                statements[0] = 0
                started = time.perf_counter()
                answer = _fetched(client, url)
                times.append((time.perf_counter() - started) * 1000)
                status, queries = answer.status_code, statements[0]
            times = times or [warm_up]
            median = statistics.median(times)
            ok = status == 200 and (download or median < budget_ms)
            verdict = "FAIL" if not ok else "download" if download else "PASS"
            rows.append(Row(label, url, status, round(median, 1), round(max(times), 1), queries, verdict))
        return rows
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def table(rows: list[Row]) -> str:
    lines = ["| page (endpoint) | URL | status | median ms | max ms | SQL statements | result |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        def shown(value: Any) -> str:
            return "" if value is None else str(value)

        lines.append(f"| {r.endpoint} | {r.url} | {shown(r.status)} | {shown(r.median_ms)} | {shown(r.max_ms)} "
                     f"| {shown(r.statements)} | {r.verdict} |")
    return "\n".join(lines)


@click.command("console")
@click.option("--database-url", required=True, help="a district made by `broker bench district` (PostgreSQL)")
@click.option("--repeat", default=5, show_default=True, type=click.IntRange(1, 100), help="timed requests per page")
@click.option("--email", default=None, help="a staff person's email (default: the one the district generator made)")
@click.option("--password", default=None, help="that person's password")
@click.option("--skip", multiple=True, metavar="ENDPOINT", help="leave this endpoint unmeasured (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON instead of a table")
def bench_console(database_url: str, repeat: int, email: str | None, password: str | None, skip: tuple[str, ...],
                  as_json: bool) -> None:
    """Time every staff console page at the server and print the table; exit 1 if one is over 300 ms or fails."""
    from broker.bench_district import STAFF_EMAIL, STAFF_PASSWORD

    rows = measure(database_url, repeat, email or STAFF_EMAIL, password or STAFF_PASSWORD,
                   echo=None if as_json else lambda text: click.echo(f"measuring {text}", err=True), skip=skip)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
    else:
        click.echo(table(rows))
        failed = [r for r in rows if r.failed]
        click.echo(f"{len(rows)} rows: {sum(r.verdict == 'PASS' for r in rows)} pass, {len(failed)} fail, "
                   f"{sum(r.verdict == 'download' for r in rows)} downloads (no page budget), "
                   f"{sum(r.verdict.startswith('skipped') for r in rows)} skipped (budget {BUDGET_MS:.0f} ms, median of {repeat}).")
    if any(r.failed for r in rows):
        raise SystemExit(1)


def _fetched(client: Any, url: str) -> Any:
    """The page read to its end (a streamed export is timed whole, not just its first bytes) and closed."""
    answer = client.get(url)
    answer.get_data()
    answer.close()
    return answer
