"""A whole week of the district, run by the schedule on a clock the test controls.

Three carrier simulators serve over real HTTP on 127.0.0.1. The scheduler's own triggers
decide what runs when; the test acts only as district staff on Monday morning and checks
what the week left behind: syncs, a cycle, approvals and a rejection, a lapse, provisioning
through one injected carrier failure that recovers, expiry and release at the carrier,
usage redeemed against a subsidy, and signed webhooks delivered to a startup.
"""

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from werkzeug.wrappers import Request, Response

from adapters.simulators import mobile, telecom, unicom
from broker.clock import SHANGHAI, FrozenClock, install_clock
from broker.db import get_db
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    Award,
    CarrierSync,
    JobRun,
    Offer,
    RequestStatus,
    ResourceRequest,
    Role,
    SubsidyProgram,
)
from broker.models.workflow import Event
from broker.netguard import DestinationGuard
from broker.schemas.policy import ProgramInSchema
from broker.services import accounts, cycles, events, ledger, market, policy
from config import parse_carriers
from scheduler.runner import Runner, enabled_jobs, run_due
from tests.conftest import startup_payload
from tests.e2e.adapters.conftest import Simulator
from tests.world import committed_app

pytestmark = pytest.mark.committing

SUNDAY = dt.datetime(2026, 12, 6, 0, 0, tzinfo=SHANGHAI)
CREDENTIALS = {
    "BROKER_CARRIER_TELECOM_TOKEN": "sim-telecom-token",
    "BROKER_CARRIER_MOBILE_APP_KEY": "sim-mobile-key",
    "BROKER_CARRIER_MOBILE_APP_SECRET": "sim-mobile-secret",
    "BROKER_CARRIER_UNICOM_USERNAME": "sim-unicom",
    "BROKER_CARRIER_UNICOM_PASSWORD": "sim-unicom-password",
}
SCHEDULES = {
    "run_cycle": "0 9 * * mon",
    "close_approvals": "0 * * * *",
    "provision": "*/15 * * * *",
    "expire": "10 0 * * *",
    "pull_usage": "0 12 * * *",
    "deliver_webhooks": "*/15 * * * *",
}


class Receiver:
    """A startup's webhook endpoint: keeps what it is sent."""

    def __init__(self):
        self.received = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        return Response("ok")(environ, start_response)


@pytest.fixture
def simulators():
    running = {
        "telecom": Simulator(telecom.create_app(seed=11, offers=80, first_month=dt.date(2026, 12, 1))),
        "mobile": Simulator(mobile.create_app(seed=12, offers=80, first_month=dt.date(2026, 12, 1))),
        "unicom": Simulator(unicom.create_app(seed=13, offers=80, first_month=dt.date(2026, 12, 1))),
    }
    receiver = Receiver()
    running["receiver"] = Simulator(receiver)
    running["receiver"].inbox = receiver
    yield running
    for simulator in running.values():
        simulator.close()


@pytest.fixture
def week(databases, tmp_path, simulators, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    quick = {"connect_timeout": 1.0, "read_timeout": 5.0, "retries": 1, "backoff_factor": 0.01,
             "breaker_fail_max": 50, "sync_schedule": "0 8 * * *"}
    carriers = parse_carriers(
        {
            "telecom": {"base_url": simulators["telecom"].url, "credentials": {"token": "BROKER_CARRIER_TELECOM_TOKEN"}, **quick},
            "mobile": {"base_url": simulators["mobile"].url, "credentials": {"app_key": "BROKER_CARRIER_MOBILE_APP_KEY", "app_secret": "BROKER_CARRIER_MOBILE_APP_SECRET"}, **quick},
            "unicom": {"base_url": simulators["unicom"].url, "credentials": {"username": "BROKER_CARRIER_UNICOM_USERNAME", "password": "BROKER_CARRIER_UNICOM_PASSWORD"}, **quick},
        },
        CREDENTIALS,
    )
    app = committed_app(databases.create(), str(tmp_path), CARRIERS=carriers, SCHEDULES=SCHEDULES, MATCHING_TIME_LIMIT=20.0)
    clock = FrozenClock(SUNDAY.astimezone(dt.timezone.utc))
    install_clock(app, clock)
    yield app, clock
    get_db(app).engine.dispose()


def _populate(session, receiver_url, guard):
    staff, _, _ = accounts.create_user(session, Role.staff, "科委审核员")
    for code in ("telecom", "mobile", "unicom"):
        accounts.register_carrier(session, code, code, code, [code])
    policy.create_program(session, staff, ProgramInSchema().load({
        "code": "tokens", "name": "Tokens 专项补贴", "kinds": ["tokens", "gpu", "cpu", "cloud_vm", "storage"],
        "rate": "0.5", "cap_per_startup": "100000", "budget": "1000000", "funding_document": "沪经信智〔2025〕489号",
        "starts_on": "2026-01-01", "ends_on": "2027-01-01"}), SUNDAY)
    window = {"window_start": dt.date(2026, 12, 8), "window_end": dt.date(2026, 12, 10)}
    asks = [
        {"kind": "gpu", "quantity": Decimal(40), "min_quantity": Decimal(5)},
        {"kind": "tokens", "quantity": Decimal(30)},
        {"kind": "cpu", "quantity": Decimal(200)},
        {"kind": "cloud_vm", "quantity": Decimal(4)},
        {"kind": "storage", "quantity": Decimal(1)},
        {"kind": "gpu", "quantity": Decimal(20)},
        {"kind": "tokens", "quantity": Decimal(10)},
        {"kind": "cpu", "quantity": Decimal(50)},
    ]
    first_startup = None
    for n, ask in enumerate(asks):
        startup, token, _ = accounts.register_startup(session, startup_payload(3000 + n, parse=True))
        accounts.verify_startup(session, staff, startup.id, SUNDAY)
        account = session.get(Account, token.account_id)
        market.submit_request(session, account, {**ask, "attributes": {}, "purpose": "一周模拟", **window}, now=SUNDAY)
        if first_startup is None:
            first_startup = account
            events.subscribe(session, account, receiver_url, guard)
    return staff, first_startup


def _lot_only_paid_offers_serve(session):
    """A paid, divisible lot covering the week whose (kind, region, attributes) no free lot shares."""
    offers = session.scalars(
        sa.select(Offer).where(Offer.window_start <= dt.date(2026, 12, 8), Offer.window_end >= dt.date(2026, 12, 10))
        .order_by(Offer.id)
    ).all()
    free = {(o.kind, o.region, json.dumps(o.attributes, sort_keys=True)) for o in offers if o.unit_price == 0}
    return next(
        o for o in offers
        if o.unit_price > 0 and o.divisible and (o.kind, o.region, json.dumps(o.attributes, sort_keys=True)) not in free
    )


@pytest.mark.slow
def test_a_week_runs_by_itself(week, simulators):
    app, clock = week
    session = get_db(app).sessionmaker()
    staff, watched = _populate(session, simulators["receiver"].url + "/hooks", DestinationGuard.from_config(app.config))
    secret = session.scalar(sa.text("SELECT secret FROM webhook_subscriptions"))
    session.rollback()
    runner, triggers = Runner(app, "week"), enabled_jobs(app)
    assert {"sync:telecom", "sync:mobile", "sync:unicom", "run_cycle", "provision"} <= set(triggers)
    start = clock()

    def run_until(moment):
        nonlocal start
        session.rollback()  # end the test's own read: on SQLite it would hold the write lock
        fired = run_due(runner, triggers, start, moment.astimezone(dt.timezone.utc), clock.set)
        start = moment.astimezone(dt.timezone.utc)
        clock.set(start)
        assert all(outcome == "ran" for _, _, outcome in fired), [f for f in fired if f[2] != "ran"]
        session.expire_all()
        return fired

    # Sunday and Monday morning: every carrier's catalogue comes in.
    run_until(SUNDAY + dt.timedelta(days=1, hours=8, minutes=30))
    syncs = session.scalars(sa.select(CarrierSync)).all()
    assert len(syncs) == 6 and all(s.error is None for s in syncs)
    carriers_with_offers = session.scalars(sa.select(Offer.carrier_id).distinct()).all()
    assert len(carriers_with_offers) == 3
    # Having browsed the offers, a startup asks for one that only a paid lot can serve.
    paid = _lot_only_paid_offers_serve(session)
    buyer = session.get(Account, watched.id)
    market.submit_request(
        session, buyer,
        {"kind": paid.kind, "quantity": min(paid.available, Decimal(10)), "attributes": {k: [v] for k, v in paid.attributes.items()},
         "regions": [paid.region], "window_start": dt.date(2026, 12, 8), "window_end": dt.date(2026, 12, 10), "purpose": "付费资源"},
        now=clock(),
    )

    # Monday 09:00: the cycle.
    run_until(SUNDAY + dt.timedelta(days=1, hours=9, minutes=30))
    proposals = session.scalars(sa.select(Allocation).order_by(Allocation.id)).all()
    assert len(proposals) >= 5, [r.status for r in session.scalars(sa.select(ResourceRequest))]

    # Monday 10:00, staff decide: reject one, leave one undecided, approve the rest.
    clock.set(start + dt.timedelta(minutes=30))
    rejected, undecided, *approved = proposals
    cycles.reject_allocation(session, staff, rejected.id, "与申报用途不符", clock())
    for allocation in approved:
        cycles.approve_allocation(session, staff, allocation.id, None, clock())
    # The carrier of the first approved allocation fails its next call (the adapter's retry too).
    flaky = approved[0]
    faults = simulators[flaky.offer.carrier.code].app.extensions["simulator"]["faults"]
    faults.options.fail_first = faults.requests + 2
    start = clock()

    # Through Wednesday 18:00: provisioning, one retry, the approval window closes.
    run_until(SUNDAY + dt.timedelta(days=3, hours=18, minutes=30))
    session.refresh(flaky)
    assert flaky.status is AllocationStatus.active and flaky.provision_attempts == 2 and flaky.carrier_ref
    for allocation in approved:
        session.refresh(allocation)
        assert allocation.status is AllocationStatus.active and allocation.carrier_ref
    session.refresh(undecided)
    assert undecided.status is AllocationStatus.lapsed
    session.refresh(rejected)
    assert rejected.status is AllocationStatus.rejected
    for offer in session.scalars(sa.select(Offer)):
        held = sum((a.quantity for a in approved if a.offer_id == offer.id), Decimal(0))
        assert offer.promised == held  # lapsed and rejected capacity went back

    # To Sunday: windows end Thursday; Friday 00:10 releases at the carriers.
    run_until(SUNDAY + dt.timedelta(days=7))
    for allocation in approved:
        session.refresh(allocation)
        assert allocation.status is AllocationStatus.released
        assert allocation.request.status is RequestStatus.completed
    released = sum(simulators[c].stats().get("released", 0) for c in ("telecom", "mobile", "unicom"))
    assert released == len({a.carrier_ref for a in approved})
    assert session.scalar(sa.select(sa.func.sum(Offer.promised))) == 0
    program = session.scalar(sa.select(SubsidyProgram))
    assert Decimal(0) < program.redeemed <= program.committed
    awards = session.scalars(sa.select(Award)).all()
    assert {a.allocation_id for a in awards} <= {a.id for a in approved}
    assert program.redeemed == sum((a.redeemed for a in awards), Decimal(0))
    assert program.committed == sum((a.committed for a in awards), Decimal(0))
    reconciliation = ledger.reconcile(session)
    assert reconciliation.ok, reconciliation.differences

    # The watched startup's feed and its signed webhooks tell the same story.
    # (Its verification was recorded before it subscribed a webhook: the story starts after it.)
    feed = [e.type for e in session.scalars(sa.select(Event).where(
        Event.startup_id == watched.startup_id, Event.type != "startup.verified").order_by(Event.id))]
    assert feed[0] == "allocation.proposed" and feed[-1] in ("allocation.expired", "allocation.lapsed", "allocation.rejected")
    inbox = simulators["receiver"].inbox.received
    assert [json.loads(body)["type"] for _, body in inbox] == feed
    for headers, body in inbox:
        stamp, signature = (part.split("=", 1)[1] for part in headers["X-Broker-Signature"].split(","))
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)

    # Every firing of the week ran exactly once and succeeded.
    runs = session.scalars(sa.select(JobRun)).all()
    assert len(runs) == len({(r.job, r.slot) for r in runs}) and {r.outcome for r in runs} == {"ok"}
    session.close()
