"""The database keeps one holder per credit code; staff decisions on a registration don't race."""

import multiprocessing

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.db import get_db, utcnow
from broker.models import Account, ApiToken, Role, Startup, StartupStatus
from broker.services import accounts
from config import load_settings
from tests.conftest import startup_payload
from tests.world import committed_app, session_of


def _startup(n=51, **overrides):
    return Startup(**{**startup_payload(n, parse=True), **overrides})


def test_the_database_admits_one_holder_of_a_code_beside_any_number_turned_away(session):
    squatter = _startup()
    session.add(squatter)
    session.commit()
    session.add(_startup(name="第二家"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()  # even if the service's own check is bypassed
    session.rollback()

    squatter.reject(None, "squatted", utcnow())
    session.commit()
    session.add(_startup(name="真正的企业"))
    session.commit()
    session.add(_startup(name="又一家"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


@pytest.mark.parametrize("status", ["rejected", "removed"])
def test_the_database_refuses_a_turned_away_startup_without_its_reason(session, status):
    session.add(_startup(status=status))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


def test_the_district_contact_is_a_setting():
    assert "021-22050983" in load_settings({})["DISTRICT_CONTACT"]
    assert load_settings({"BROKER_DISTRICT_CONTACT": "kw@example.cn"})["DISTRICT_CONTACT"] == "kw@example.cn"


def decide(url, instance, startup_ids, decision, barrier):
    """One process of the race: verify, reject or remove each startup, all processes at once."""
    from broker.errors import DomainError
    from broker.services import accounts

    app = committed_app(url, instance)
    outcomes = []
    for startup_id in startup_ids:
        session = session_of(app)
        staff = session.scalar(sa.select(Account).where(Account.role == Role.staff).order_by(Account.id))
        session.rollback()
        barrier.wait(timeout=120)
        try:
            if decision == "verify":
                accounts.verify_startup(session, staff, startup_id, now(app))
            elif decision == "reject":
                accounts.reject_startup(session, staff, startup_id, "race", now(app))
            else:
                accounts.remove_startup(session, staff, startup_id, "race", now(app))
            outcomes.append((startup_id, decision, "ok"))
        except DomainError as error:
            session.rollback()
            outcomes.append((startup_id, decision, type(error).__name__))
        finally:
            session.close()
    get_db(app).engine.dispose()
    return outcomes


@pytest.mark.committing
@pytest.mark.slow
def test_concurrent_decisions_on_one_registration_let_exactly_one_through(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    accounts.create_user(session, Role.staff, "staff")
    ids = [accounts.register_startup(session, startup_payload(60 + n, parse=True))[0].id for n in range(8)]
    session.close()

    decisions = ["verify", "reject", "verify", "reject", "remove", "verify"]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(len(decisions))
        with context.Pool(len(decisions)) as pool:
            results = pool.starmap(decide, [(url, str(tmp_path), ids, d, barrier) for d in decisions])
    session = session_of(app)
    for startup_id in ids:
        tried = [(decision, outcome) for result in results for sid, decision, outcome in result if sid == startup_id]
        wins = [decision for decision, outcome in tried if outcome == "ok"]
        # One decision wins and the others see it and are refused; only a removal can follow a verification.
        assert sorted(wins) in (["reject"], ["remove"], ["verify"], ["remove", "verify"]), tried
        assert all(outcome in ("ok", "Conflict") for _, outcome in tried), tried
        startup = session.get(Startup, startup_id)
        final = "remove" if "remove" in wins else wins[0]
        assert startup.status is {"verify": StartupStatus.verified, "reject": StartupStatus.rejected,
                                  "remove": StartupStatus.removed}[final]
        tokens = session.scalars(sa.select(ApiToken).join(Account, ApiToken.account_id == Account.id).where(
            Account.startup_id == startup_id)).all()
        assert tokens and all((t.revoked_at is not None) == (final != "verify") for t in tokens)
    session.close()
    get_db(app).engine.dispose()
