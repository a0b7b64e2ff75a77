"""The `broker` command: Flask's run/shell/routes plus the broker's own commands."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, run_command, with_appcontext

from adapters.simulators.cli import simulate_command
from broker import create_app
from broker.bench_console import bench_console
from broker.bench_district import bench_district
from broker.bench_reports import bench_reports
from broker.bench_sync import bench_sync
from broker.clock import SHANGHAI, now
from broker.db import MAX_ID, get_db, get_session
from broker.errors import DomainError
from broker.matching.cli import bench_match_command, match_command
from broker.models import Role


def _create_app_from_environment():  # FlaskGroup calls it with no arguments
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app_from_environment, add_version_option=False)
def main() -> None:
    """Silicon Alley Resource Broker (上海硅巷资源撮合平台)."""


main.add_command(simulate_command)


def _fail(error: DomainError) -> None:
    click.echo(f"Error: {error.message}", err=True)
    for field, problems in (error.errors or {}).items():
        click.echo(f"  {field}: {' '.join(map(str, problems))}", err=True)
    sys.exit(2)


def _require_migrated_database() -> None:
    """Stop with one line, not a traceback, if the app's database is not at the newest migration."""
    from broker.migrations import schema_problem

    session = get_session()
    try:
        problem = schema_problem(get_db().engine, session.connection)
    finally:
        session.rollback()  # hold no transaction (on SQLite: no write lock) while the command runs
    if problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(1)


def with_migrated_database(command: Callable[..., Any]) -> Callable[..., Any]:
    """Like `with_appcontext`, for a command that uses the database: refuse one that is not migrated."""

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _require_migrated_database()
        return command(*args, **kwargs)

    return with_appcontext(checked)


def _checked_run_command() -> click.Command:
    """Flask's `run`, refusing to serve an unmigrated database (every request would fail)."""
    serve = run_command.callback
    assert serve is not None

    @functools.wraps(serve)
    def run(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().ensure_object(ScriptInfo).load_app()
        with app.app_context():
            _require_migrated_database()
        return serve(*args, **kwargs)

    return click.Command(run_command.name, callback=run, params=run_command.params, help=run_command.help,
                         short_help=run_command.short_help)


main.add_command(_checked_run_command())


def known_adapters() -> list[str]:
    return sorted(current_app.extensions["broker.adapters"].names())


@main.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Bring the database to the newest (or the given) schema revision."""
    from broker.migrations import upgrade

    upgrade(get_db().engine, revision)
    click.echo(f"Database at {revision}: {get_db().engine.url.render_as_string(hide_password=True)}")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Print the database's schema revision."""
    from broker.migrations import database_location, head_revision, revision_if_any

    engine, session = get_db().engine, get_session()
    try:
        current = revision_if_any(engine, session.connection)  # a missing SQLite file stays missing
    finally:
        session.rollback()
    click.echo(f"database: {database_location(engine)}")
    click.echo(f"current: {current or 'empty database'}  head: {head_revision()}")


@main.group("users")
def users_group() -> None:
    """Staff and admin accounts."""


@users_group.command("create")
@click.option("--role", type=click.Choice([Role.staff.value, Role.admin.value]), required=True)
@click.option("--name", required=True)
@with_migrated_database
def users_create(role: str, name: str) -> None:
    """Create a staff or admin account and print its token, once."""
    from broker.services.accounts import create_user

    try:
        account, token, secret = create_user(get_session(), Role(role), name)
    except DomainError as error:
        _fail(error)
    click.echo(f"Created {role} account {account.id} ({account.name}).")
    click.echo(f"Token (shown once, store it now): {secret}")


@main.group("people")
def people_group() -> None:
    """People who sign in to the console."""


@people_group.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([Role.staff.value, Role.admin.value]), required=True)
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True, help="the console's address, for the link")
@with_migrated_database
def people_create(email: str, name: str, role: str, base_url: str) -> None:
    """Invite a district person (e.g. the first staff member) and print their one-time invitation link."""
    from broker.services.people import INVITATION_LIFETIME, invite_at_console

    try:
        invitation, link = invite_at_console(get_session(), email, name, Role(role), now(), base_url)
    except DomainError as error:
        _fail(error)
    expires = invitation.expires_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    click.echo(f"Invited {email} as {role}. The link works once, until {expires} (Asia/Shanghai), "
               f"{int(INVITATION_LIFETIME.total_seconds() // 3600)} h:")
    click.echo(link)


@main.group("carriers")
def carriers_group() -> None:
    """Carriers and their adapters."""


@carriers_group.command("add")
@click.option("--code", required=True, help="short code, e.g. telecom")
@click.option("--name", required=True)
@click.option("--adapter", required=True, help="a registered adapter name")
@with_migrated_database
def carriers_add(code: str, name: str, adapter: str) -> None:
    """Register a carrier and print its token, once."""
    from broker.services.accounts import register_carrier

    try:
        carrier, token, secret = register_carrier(get_session(), code, name, adapter, known_adapters())
    except DomainError as error:
        _fail(error)
    click.echo(f"Registered carrier {carrier.code} ({carrier.name}) with adapter {carrier.adapter}.")
    click.echo(f"Token (shown once, store it now): {secret}")
    click.echo(f"A new one, if this one is lost: broker carriers token {carrier.code}")


@carriers_group.command("token")
@click.argument("code")
@with_migrated_database
def carriers_token(code: str) -> None:
    """Print a fresh token for carrier CODE, once (operator action, recorded in the audit log)."""
    from broker.services.accounts import reissue_carrier_token

    try:
        token, secret = reissue_carrier_token(get_session(), code)
    except DomainError as error:
        _fail(error)
    _print_reissued(token, secret, f"carrier {code}")


def _print_reissued(token, secret: str, whose: str) -> None:  # noqa: ANN001
    click.echo(f"New token {token.id} for {whose} (account {token.account_id}).")
    click.echo(f"Token (shown once, store it now): {secret}")
    click.echo("Earlier tokens of the account still work until revoked: broker tokens revoke ID")


@carriers_group.command("list")
@with_migrated_database
def carriers_list() -> None:
    """List registered carriers."""
    from broker.services.accounts import list_carriers

    for carrier in list_carriers(get_session()):
        click.echo(f"{carrier.code}\t{carrier.adapter}\t{carrier.name}")


@carriers_group.command("sync")
@click.argument("code")
@with_migrated_database
def carriers_sync(code: str) -> None:
    """Pull carrier CODE's whole catalogue through its adapter and apply it (exit 1 if it failed)."""
    from adapters.base import AdapterError
    from broker.services.sync import adapter_for, sync_carrier

    session = get_session()
    try:
        adapter = adapter_for(session, code, current_app.extensions["broker.carrier_adapters"])
    except DomainError as error:
        _fail(error)
    except AdapterError as error:  # not configured: no settings, or a credential variable unset
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    sync = sync_carrier(session, code, adapter, now())
    click.echo(_describe_sync(sync))
    if sync.error is not None:
        sys.exit(1)


def _describe_sync(sync) -> str:  # noqa: ANN001
    started = sync.started_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    counts = " ".join(f"{name}={value}" for name, value in sync.counts.items())
    line = f"sync {sync.id}  {started}  {sync.source.value:<7}  {sync.status.value:<9}  {counts}"
    return line + (f"\n  error: {sync.error}" if sync.error else "")


@carriers_group.command("sync-report")
@click.argument("code")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000), help="syncs to show")
@with_migrated_database
def carriers_sync_report(code: str, limit: int) -> None:
    """Show carrier CODE's recent syncs, and what the latest one quarantined and kept."""
    from broker.services.sync import sync_report

    try:
        report = sync_report(get_session(), code, limit)
    except DomainError as error:
        _fail(error)
    if not report.syncs:
        click.echo(f"No syncs of {code} yet.")
        return
    click.echo(f"Syncs of {code} ({report.carrier.name}), newest first, times in Asia/Shanghai:")
    for sync in report.syncs:
        click.echo(_describe_sync(sync))
    latest = report.syncs[0]
    if report.quarantined:
        click.echo(f"Quarantined by sync {latest.id} (first {len(report.quarantined)} of {latest.quarantined}):")
        for record in report.quarantined:
            click.echo(f"  {record.location or '-'}\t{record.external_id or '-'}\t{record.reason}")
    if report.conflicts:
        click.echo(f"Promised capacity kept by sync {latest.id} (first {len(report.conflicts)} of {latest.conflicts}):")
        for conflict in report.conflicts:
            click.echo(
                f"  offer {conflict.offer_id} ({conflict.external_id}) {conflict.kind.value}: feed asked "
                f"{conflict.requested_quantity}, kept {conflict.kept_quantity}"
            )


@main.group("startups")
def startups_group() -> None:
    """Startups (they register themselves through the API)."""


@startups_group.command("token")
@click.argument("startup_id", type=click.IntRange(1, MAX_ID))
@with_migrated_database
def startups_token(startup_id: int) -> None:
    """Print a fresh token for startup STARTUP_ID, once (operator action, recorded in the audit log)."""
    from broker.services.accounts import reissue_startup_token

    try:
        token, secret = reissue_startup_token(get_session(), startup_id)
    except DomainError as error:
        _fail(error)
    _print_reissued(token, secret, f"startup {startup_id}")


@main.group("tokens")
def tokens_group() -> None:
    """API tokens."""


@tokens_group.command("revoke")
@click.argument("token_id", type=click.IntRange(1, MAX_ID))  # beyond: not an id, not an overflow
@with_migrated_database
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id (operator action, recorded in the audit log)."""
    from broker.services.accounts import revoke_token_as_operator

    try:
        token = revoke_token_as_operator(get_session(), token_id, now())
    except DomainError as error:
        _fail(error)
    click.echo(f"Revoked token {token.id} ({token.prefix}…) of account {token.account_id}.")


@main.group("ledger")
def ledger_group() -> None:
    """The subsidy ledger."""


@ledger_group.command("reconcile")
@with_migrated_database
def ledger_reconcile() -> None:
    """Recompute every balance from the ledger rows and compare the stored totals; exit 1 on any difference."""
    from broker.services.ledger import reconcile

    session = get_session()
    try:
        result = reconcile(session)
    finally:
        session.rollback()
    click.echo(f"{'program':<28}{'budget':>16}{'committed':>16}{'redeemed':>16}{'written off':>16}{'remaining':>16}")
    for program, balance in result.programs:
        click.echo(f"{program.code:<28}{balance.budget:>16}{balance.committed:>16}{balance.redeemed:>16}"
                   f"{balance.written_off:>16}{balance.remaining:>16}")
    click.echo(f"{result.rows} ledger rows, {len(result.programs)} programs, {result.awards_checked} awards checked.")
    if result.ok:
        click.echo("Reconciled: every stored total is what the rows say.")
        return
    for d in result.differences:
        click.echo(f"DIFFERENCE {d.what} {d.balance}: stored {d.stored}, from the rows {d.derived} ({d.detail})", err=True)
    raise SystemExit(1)


@ledger_group.command("statement")
@click.option("--program", "program_code", required=True, help="the program's code")
@click.option("--period", required=True, help="a quarter (2026-Q4) or a month (2026-11), Asia/Shanghai")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, writable=True), help="also write it to this .xlsx file")
@with_migrated_database
def ledger_statement(program_code: str, period: str, xlsx_path: str | None) -> None:
    """Print a program's settlement statement for a period, building it if there is none yet."""
    from decimal import Decimal

    from broker.services import settlement

    session = get_session()
    try:
        view = settlement.statement_for(session, program_code, period, now(),
                                        Decimal(current_app.config["SETTLEMENT_FOUR_EYES_ABOVE"]))
        documents = settlement.funding_documents(session, view.program_id)
        click.echo("\n".join(statement_lines(view, documents)))
        if xlsx_path:
            settlement.write_xlsx(view, documents, xlsx_path)
            click.echo(f"Written to {xlsx_path}.")
    except DomainError as error:
        _fail(error)
    finally:
        session.rollback()


def _pad(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns: a Chinese character takes two."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 0)


def statement_lines(view: Any, documents: list[str]) -> list[str]:
    """A settlement statement as a table: a header naming the program, period and status, one row per
    award, and the totals per payee."""
    last_day = view.ends_at.astimezone(SHANGHAI).date() - dt.timedelta(days=1)
    out = [
        f"Settlement statement {view.id}: program {view.program_code} ({view.program.name}), period {view.period} "
        f"({view.starts_at.astimezone(SHANGHAI).date()} to {last_day}, Asia/Shanghai)",
        f"Status: {view.status.value}; approvals needed: {view.approvals_needed}"
        + (f"; disbursement reference: {view.disbursement_reference}" if view.disbursement_reference else ""),
        "Funding documents: " + ("; ".join(documents) or "none"),
        "",
        f"{'award':>6} {'payee':<28} {'committed':>12} {'used before':>12} {'used in':>12} {'written off':>12} "
        f"{'outstanding':>12} {'evidence':<12} {'notice':<11} {'payable':>12}  held",
    ]
    for line in view.lines:
        payee = _pad(f"{line.payee_kind.value}:{line.payee_name}", 28)
        out.append(f"{line.award_id:>6} {payee} {line.committed:>12} {line.redeemed_before:>12} "
                   f"{line.redeemed_in_period:>12} {line.written_off_before:>12} {line.outstanding:>12} "
                   f"{line.evidence:<12} {line.notice_state.value:<11} {line.payable:>12}  {line.held or ''}")
    out += ["", "Totals per payee:",
            f"{'payee':<35} {'committed':>12} {'used in':>12} {'outstanding':>12} {'payable':>12}"]
    for payee in view.payees:
        name = _pad(f"{payee.payee_kind.value}:{payee.payee_name}", 35)
        out.append(f"{name} {payee.committed:>12} {payee.redeemed_in_period:>12} {payee.outstanding:>12} "
                   f"{payee.payable:>12}")
    out.append(f"{'Total payable':<35} {'':>12} {'':>12} {'':>12} {view.total_payable:>12}")
    out.append("used before / used in: redeemed by usage before / in the period; written off: before this statement; "
               "outstanding: redeemed by the period's end, not written off; payable: what the approval writes off")
    return out


@main.group("bench")
def bench_group() -> None:
    """Benchmarks: measure and print a table (not tests)."""


bench_group.add_command(bench_sync)
bench_group.add_command(bench_district)
bench_group.add_command(bench_console)
bench_group.add_command(bench_reports)
bench_group.add_command(bench_match_command, "match")
main.add_command(match_command, "match")


@main.group("cycle")
def cycle_group() -> None:
    """Matching cycles."""


@cycle_group.command("run")
@click.option("--dry-run", is_flag=True, help="show what would be proposed; hold and write nothing")
@click.option("--time-limit", type=click.FloatRange(0.1, 3600), help="seconds for the matching engine")
@with_migrated_database
def cycle_run(dry_run: bool, time_limit: float | None) -> None:
    """Run a matching cycle now (as the operator), and print its outcome."""
    import json

    from broker.db import TransientFailure, retry_transient
    from broker.services.cycles import run_cycle

    session = get_session()
    try:
        outcome = retry_transient(
            lambda: run_cycle(session, now(), dry_run=dry_run, time_limit=time_limit),
            attempts=int(current_app.config["TRANSIENT_RETRIES"]), before_retry=session.rollback,
        )
    except DomainError as error:
        _fail(error)
    except TransientFailure as error:
        click.echo(f"Error: the database stayed busy ({error}); nothing was changed. Run it again.", err=True)
        sys.exit(1)
    stats = outcome.stats
    head = "Dry run (nothing held)" if outcome.cycle is None else f"Cycle {outcome.cycle.id} proposed"
    click.echo(
        f"{head}: {stats['proposals']} proposals for {stats['requests_served']} of {stats['requests']} requests "
        f"over {stats['offers']} offers; objective {stats['objective']}, bound {stats['bound']}, gap {stats['gap']}"
    )
    if outcome.cycle is not None:
        click.echo(f"Approval deadline: {outcome.cycle.approval_deadline.astimezone(SHANGHAI).isoformat()}")
    for item in outcome.proposals if dry_run else []:
        click.echo(json.dumps(item, ensure_ascii=False))
    for item in stats["unfilled"]:
        click.echo(f"  request {item['request_id']} left short: {item['reason']}")


@main.command("scheduler")
@with_migrated_database
def scheduler_command() -> None:
    """Run the scheduled jobs in this process (production: one or more of these beside gunicorn)."""
    from scheduler.runner import SchedulerRefused, serve

    try:
        serve(current_app._get_current_object())  # type: ignore[attr-defined]
    except SchedulerRefused as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="set up the data, print the summary, and exit")
@with_appcontext
def demo(host: str, port: int, no_serve: bool) -> None:
    """Migrate, load the demo district, serve the carriers' simulators, the scheduler and the API."""
    import os

    from broker.demo import (
        DEMO_WEBHOOK_ALLOWED_HOSTS,
        SIMULATOR_CREDENTIALS,
        prepare_demo,
        start_embedded_scheduler,
        start_simulators,
    )

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for name, value in SIMULATOR_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    if "BROKER_WEBHOOK_ALLOWED_HOSTS" not in os.environ:
        app.config["WEBHOOK_ALLOWED_HOSTS"] = DEMO_WEBHOOK_ALLOWED_HOSTS
    try:
        start_simulators(app)
    except OSError as error:
        click.echo(f"Error: a carrier simulator's port is taken ({error}); stop what uses it or set "
                   "BROKER_CARRIER_<CODE>_BASE_URL to another 127.0.0.1 port.", err=True)
        sys.exit(1)
    summary = prepare_demo(app)
    base = f"http://{host}:{port}"
    click.echo(summary.describe(base))
    if not no_serve:
        from werkzeug.serving import run_simple

        start_embedded_scheduler(app)
        click.echo("  scheduler:  embedded; a cycle every 10 minutes, provisioning every 20 seconds")
        run_simple(host, port, app, threaded=True, use_reloader=False)