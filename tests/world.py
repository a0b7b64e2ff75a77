"""A small district built through the services, for tests that need committed data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from broker import create_app
from broker.db import create_engine, get_db
from broker.migrations import upgrade
from broker.models import Account, Role, Sector
from broker.services import accounts, market
from tests.conftest import startup_payload


def committed_app(url: str, instance: str, **config) -> Flask:
    """An app on a migrated database whose sessions commit for real."""
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return create_app(
        {"BROKER_ENV": "test", "DATABASE_URL": url, "SECRET_KEY": "test", "INSTANCE_PATH": instance, **config}
    )


@dataclass
class District:
    staff_id: int
    carrier_accounts: dict[str, int] = field(default_factory=dict)
    startup_accounts: list[int] = field(default_factory=list)


def build_district(
    session: Session,
    *,
    carriers: tuple[str, ...] = ("telecom",),
    offers: int = 5,
    offer_quantity: int = 100,
    startups: int = 10,
    ask: int = 50,
    window: tuple[dt.date, dt.date] = (dt.date(2026, 12, 8), dt.date(2026, 12, 10)),
) -> District:
    staff, _, _ = accounts.create_user(session, Role.staff, "staff")
    district = District(staff.id)
    for code in carriers:
        carrier, token, _ = accounts.register_carrier(session, code, f"{code} carrier", code, [code])
        account = session.get(Account, token.account_id)
        district.carrier_accounts[code] = account.id
        market.upsert_offers(
            session,
            account,
            [
                {
                    "external_id": f"{code}-gpu-{i}",
                    "kind": "gpu",
                    "region": "sh",
                    "attributes": {"gpu_model": "H100"},
                    "quantity": Decimal(offer_quantity),
                    "window_start": dt.date(2026, 12, 1),
                    "window_end": dt.date(2026, 12, 31),
                    "list_price": Decimal(20),
                    "unit_price": Decimal(10),
                    "divisible": True,
                }
                for i in range(offers)
            ],
        )
    sectors = [Sector.smart_driving, Sector.ai_models, Sector.smart_healthcare, Sector.fintech]
    for n in range(startups):
        startup, token, _ = accounts.register_startup(
            session, startup_payload(1000 + n, sector=sectors[n % len(sectors)].value, parse=True)
        )
        accounts.verify_startup(session, session.get(Account, staff.id), startup.id)
        account = session.get(Account, token.account_id)
        district.startup_accounts.append(account.id)
        market.submit_request(
            session,
            account,
            {
                "kind": "gpu",
                "quantity": Decimal(ask),
                "min_quantity": Decimal(10),
                "attributes": {"gpu_model": ["H100"]},
                "window_start": window[0],
                "window_end": window[1],
                "purpose": "test",
            },
            now=dt.datetime.combine(window[0], dt.time(), dt.timezone.utc),
        )
    return district


def session_of(app: Flask) -> Session:
    return get_db(app).sessionmaker()


def count(session: Session, model: type, *where) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def decide_worker(url: str, instance: str, plan: list[tuple[int, str]], offers_to_withdraw: list[int]) -> list[tuple[int, str, str]]:
    """One process of a concurrency test: make each decision in `plan`, report what happened."""
    from broker.db import utcnow
    from broker.errors import DomainError
    from broker.services import cycles

    app = committed_app(url, instance)
    outcomes = []
    for allocation_id, decision in plan:
        session = session_of(app)
        try:
            staff = session.scalar(sa.select(Account).where(Account.role == Role.staff))
            if decision == "approve":
                cycles.approve_allocation(session, staff, allocation_id, None, utcnow())
            else:
                cycles.reject_allocation(session, staff, allocation_id, "race", utcnow())
            outcomes.append((allocation_id, decision, "ok"))
        except DomainError as error:
            session.rollback()
            outcomes.append((allocation_id, decision, type(error).__name__))
        finally:
            session.close()
    for offer_id in offers_to_withdraw:
        session = session_of(app)
        try:
            carrier = session.scalar(sa.select(Account).where(Account.role == Role.carrier))
            market.withdraw_offer(session, carrier, offer_id)
        except DomainError:
            session.rollback()
        finally:
            session.close()
    get_db(app).engine.dispose()
    return outcomes
