"""What startups and carriers declare for subsidy eligibility: related parties (shareholders,
affiliates), other public subsidies a startup holds, and a carrier's own code.

A list is replaced whole, under the declarant's row lock (two replacements at once: the second
sees the first). Every row written or removed is in the audit log: rows written by the flush
hook (`Audited`), rows removed by an entry written here, since the hook sees no deletes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.models import Account, Allocation, AuditEntry, Carrier, OtherSubsidy, RelatedParty, ResourceRequest, Role, Startup
from broker.models.audit import _jsonable, actor_columns
from broker.services.accounts import STAFF_ROLES, require_role


def _declarant(session: Session, actor: Account, *, lock: bool) -> tuple[type[Startup] | type[Carrier], int]:
    """The startup or the carrier `actor` declares for, its row locked when `lock`."""
    if actor.role is Role.startup and actor.startup_id is not None:
        model, key = Startup, actor.startup_id
    elif actor.role is Role.carrier and actor.carrier_id is not None:
        model, key = Carrier, actor.carrier_id
    else:
        raise Forbidden("A startup or a carrier declares its own related parties; staff read them.")
    if lock:
        session.scalar(sa.select(model.id).where(model.id == key).with_for_update())
    return model, key


def _remove(session: Session, rows: list[Any]) -> None:
    """Delete these rows, each with its audit entry (what it was)."""
    if not rows:
        return
    entries = []
    for row in rows:
        before = {attr.key: _jsonable(getattr(row, attr.key)) for attr in sa.inspect(row).mapper.column_attrs}
        entries.append({"action": "delete", "entity_type": row.__tablename__, "entity_id": row.id,
                        "before": before, "after": None})
        session.delete(row)
    session.flush()
    session.execute(sa.insert(AuditEntry), [{**actor_columns(session), **e} for e in entries])


# -- related parties ---------------------------------------------------------------------------


def _parties(session: Session, model: type, key: int) -> list[RelatedParty]:
    column = RelatedParty.startup_id if model is Startup else RelatedParty.carrier_id
    return list(session.scalars(sa.select(RelatedParty).where(column == key).order_by(RelatedParty.uscc)))


def _parties_view(model: type, key: int, parties: list[RelatedParty]) -> dict[str, Any]:
    return {"startup_id": key if model is Startup else None, "carrier_id": key if model is Carrier else None,
            "parties": parties}


@transaction
def replace_related_parties(session: Session, actor: Account, parties: list[dict[str, Any]]) -> dict[str, Any]:
    """A startup (its shareholders and affiliates) or a carrier (its affiliates) replaces its list."""
    model, key = _declarant(session, actor, lock=True)
    _remove(session, _parties(session, model, key))
    owner = {"startup_id": key} if model is Startup else {"carrier_id": key}
    session.add_all(RelatedParty(**owner, **party) for party in parties)
    session.flush()
    return _parties_view(model, key, _parties(session, model, key))


def own_related_parties(session: Session, actor: Account) -> dict[str, Any]:
    """The related parties the signed-in startup or carrier declared."""
    model, key = _declarant(session, actor, lock=False)
    return _parties_view(model, key, _parties(session, model, key))


def related_parties_of(session: Session, actor: Account, *, startup_id: int | None = None,
                       carrier_id: int | None = None) -> dict[str, Any]:
    """One startup's or carrier's declared parties: staff read any, a startup or carrier its own."""
    model, key = (Startup, startup_id) if startup_id is not None else (Carrier, carrier_id)
    own = (actor.startup_id if model is Startup else actor.carrier_id) == key
    if key is None or not (own or actor.role in STAFF_ROLES) or session.get(model, key) is None:
        raise NotFound(f"No such {'startup' if model is Startup else 'carrier'}.")
    return _parties_view(model, key, _parties(session, model, key))


@transaction
def set_carrier_uscc(session: Session, actor: Account, carrier_id: int, uscc: str | None) -> Carrier:
    """Staff, or the carrier itself, record the carrier's unified social credit code."""
    if actor.role not in STAFF_ROLES and actor.carrier_id != carrier_id:
        raise NotFound("No such carrier.")
    carrier = session.scalar(sa.select(Carrier).where(Carrier.id == carrier_id).with_for_update()
                             .execution_options(populate_existing=True))
    if carrier is None:
        raise NotFound("No such carrier.")
    carrier.audit_as("set_uscc")
    carrier.uscc = uscc
    return carrier


# -- other public subsidies --------------------------------------------------------------------


def _subsidies(session: Session, startup_id: int) -> list[OtherSubsidy]:
    return list(session.scalars(sa.select(OtherSubsidy).where(OtherSubsidy.startup_id == startup_id).order_by(OtherSubsidy.id)))


@transaction
def replace_other_subsidies(session: Session, actor: Account, subsidies: list[dict[str, Any]]) -> dict[str, Any]:
    """A startup replaces its list of the other public subsidies it holds, each for one contract:
    one of its own allocations, or what one carrier supplies it of one kind."""
    require_role(actor, Role.startup)
    _, startup_id = _declarant(session, actor, lock=True)
    problems: dict[int, dict[str, list[str]]] = {}
    for i, item in enumerate(subsidies):
        if item.get("allocation_id") is not None:
            owner = session.scalar(sa.select(ResourceRequest.startup_id).join(Allocation, Allocation.request_id == ResourceRequest.id)
                                   .where(Allocation.id == item["allocation_id"]))
            if owner != startup_id:
                problems[i] = {"allocation_id": [f"No allocation {item['allocation_id']} of yours."]}
        elif session.get(Carrier, item["carrier_id"]) is None:
            problems[i] = {"carrier_id": [f"No carrier {item['carrier_id']}."]}
    if problems:
        raise InvalidInput("Some subsidies name a contract that is not yours or does not exist.", {"subsidies": problems})
    _remove(session, _subsidies(session, startup_id))
    session.add_all(OtherSubsidy(startup_id=startup_id, **item) for item in subsidies)
    session.flush()
    return {"startup_id": startup_id, "subsidies": _subsidies(session, startup_id)}


def other_subsidies_of(session: Session, actor: Account, startup_id: int | None = None) -> dict[str, Any]:
    """A startup's declared other subsidies: its own (no id), or staff any startup's."""
    if startup_id is None:
        require_role(actor, Role.startup)
        startup_id = actor.startup_id
    elif not (actor.role in STAFF_ROLES or actor.startup_id == startup_id) or session.get(Startup, startup_id) is None:
        raise NotFound("No such startup.")
    return {"startup_id": startup_id, "subsidies": _subsidies(session, startup_id)}
