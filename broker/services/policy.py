"""The district's matching policy, its subsidy programs, and the audit log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction
from broker.errors import NotFound
from broker.models import LIGHTHOUSE_SECTORS, Account, AuditEntry, Policy, Role, SubsidyProgram
from broker.resources import KINDS
from broker.services.accounts import require_role
from broker.uniques import duplicate


def default_policy() -> Policy:
    """The policy in force before staff set one: Lighthouse sectors weigh double."""
    return Policy(
        sector_weights={s.value: "2.0" for s in sorted(LIGHTHOUSE_SECTORS)},
        default_weight=Decimal("1.0"),
        key_enterprise_bonus=Decimal("0.5"),
        wait_bonus_per_cycle=Decimal("0.1"),
        share_cap=Decimal("0.5"),
        approval_window_hours=57,
    )


def current_policy(session: Session) -> Policy:
    """The newest saved policy, or the default one."""
    return session.scalar(sa.select(Policy).order_by(Policy.id.desc()).limit(1)) or default_policy()


@transaction
def set_policy(session: Session, actor: Account, data: dict[str, Any]) -> Policy:
    """Staff put a new policy version in force; earlier versions stay for the record."""
    require_role(actor, Role.staff, Role.admin)
    weights = {sector.value: str(weight) for sector, weight in data.pop("sector_weights").items()}
    named = data.pop("max_request_quantity", {})
    # Every kind's figure is written down, so a version means the same after the defaults change.
    limits = {kind: str(named.get(kind, spec.max_request)) for kind, spec in KINDS.items()}
    policy = Policy(sector_weights=weights, max_request_quantity=limits, created_by_id=actor.id, **data)
    session.add(policy)
    return policy


def list_programs(session: Session) -> list[SubsidyProgram]:
    return list(session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.id)))


def get_program(session: Session, program_id: int) -> SubsidyProgram:
    program = session.get(SubsidyProgram, program_id)
    if program is None:
        raise NotFound("No such subsidy program.")
    return program


@transaction
def create_program(session: Session, actor: Account, data: dict[str, Any]) -> SubsidyProgram:
    """Staff open a subsidy program with its rate, caps, budget and eligibility."""
    require_role(actor, Role.staff, Role.admin)
    if session.scalar(sa.select(SubsidyProgram.id).where(SubsidyProgram.code == data["code"])) is not None:
        raise duplicate("uq_subsidy_programs_code")
    if data.get("eligible_sectors") is not None:
        data["eligible_sectors"] = sorted(s.value for s in data["eligible_sectors"])
    program = SubsidyProgram(**data)
    session.add(program)
    return program


def list_audit(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """Staff and admins read the audit log, newest first."""
    require_role(actor, Role.staff, Role.admin)
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc())
    for name in ("entity_type", "entity_id", "actor_id", "acting_staff_id", "action"):
        if name in filters:
            query = query.where(getattr(AuditEntry, name) == filters[name])
    return query
