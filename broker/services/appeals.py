"""Appeals (诉求): a startup questions a decision on its allocation; staff answer."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction
from broker.errors import Conflict, NotFound
from broker.models import Account, Allocation, AllocationStatus, Role
from broker.models.workflow import Appeal
from broker.services import events
from broker.services.accounts import STAFF_ROLES, require_role
from broker.services.market import get_allocation

APPEALABLE = frozenset({AllocationStatus.rejected, AllocationStatus.lapsed})


@transaction
def file_appeal(session: Session, actor: Account, allocation_id: int, message: str, now: dt.datetime) -> Appeal:
    """The startup appeals a rejected or lapsed allocation of its own."""
    require_role(actor, Role.startup)
    allocation = get_allocation(session, actor, allocation_id)
    if allocation.status not in APPEALABLE:
        raise Conflict(f"Only a rejected or lapsed allocation can be appealed; this one is {allocation.status.value}.")
    # The friendly answer; two appeals racing past it meet the unique index on open appeals (409).
    pending = session.scalar(
        sa.select(Appeal.id).where(Appeal.allocation_id == allocation.id, Appeal.status == "open")
    )
    if pending is not None:
        raise Conflict(f"Appeal {pending} on this allocation is still waiting for an answer.")
    appeal = Appeal(allocation_id=allocation.id, startup_id=actor.startup_id, message=message, created_at=now)
    session.add(appeal)
    return appeal


def list_appeals(session: Session, actor: Account, allocation_id: int | None = None) -> sa.Select:
    """A startup's own appeals; staff see all."""
    query = sa.select(Appeal).order_by(Appeal.id)
    if actor.role not in STAFF_ROLES:
        require_role(actor, Role.startup)
        query = query.where(Appeal.startup_id == actor.startup_id)
    if allocation_id is not None:
        query = query.where(Appeal.allocation_id == allocation_id)
    return query


@transaction
def answer_appeal(session: Session, actor: Account, appeal_id: int, answer: str, now: dt.datetime) -> Appeal:
    """Staff answer an appeal; the startup is told in its feed."""
    require_role(actor, Role.staff, Role.admin)
    appeal = session.scalar(sa.select(Appeal).where(Appeal.id == appeal_id).with_for_update().execution_options(populate_existing=True))
    if appeal is None:
        raise NotFound("No such appeal.")
    appeal.respond(answer, actor.id, now)
    allocation = session.get(Allocation, appeal.allocation_id)
    events.record(session, "appeal.answered", allocation, appeal.startup_id, None, now, appeal_id=appeal.id, answer=answer)
    return appeal
