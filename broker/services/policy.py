"""The district's matching policy, its subsidy programs, and the audit log."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import (
    LIGHTHOUSE_SECTORS,
    Account,
    AuditEntry,
    LedgerKind,
    Policy,
    ProgramMode,
    ProgramStatus,
    Role,
    StackGroup,
    SubsidyProgram,
)
from broker.resources import KINDS
from broker.services import ledger
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


def _terms(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """Schema-loaded terms as the program's columns store them."""
    terms = dict(data)
    if terms.get("eligible_sectors") is not None:
        terms["eligible_sectors"] = sorted(s.value for s in terms["eligible_sectors"])
    if terms.get("excludes_subsidy_levels") is not None:
        terms["excludes_subsidy_levels"] = sorted({level.value for level in terms["excludes_subsidy_levels"]})
    if terms.get("excludes_subsidy_kinds") is not None:
        terms["excludes_subsidy_kinds"] = sorted(set(terms["excludes_subsidy_kinds"]))
    if terms.get("evidence_required") is not None:
        terms["evidence_required"] = sorted({t.value for t in terms["evidence_required"]})
    for rule in terms.get("rate_rules") or []:
        rule["rate"] = str(rule["rate"])
        if rule.get("sectors") is not None:
            rule["sectors"] = sorted(s.value for s in rule["sectors"])
    if "stack_group" in terms:
        code = terms.pop("stack_group")
        group = None if code is None else session.scalar(sa.select(StackGroup).where(StackGroup.code == code))
        if code is not None and group is None:
            raise InvalidInput("No such stack group.", {"stack_group": [f"No stack group {code!r}."]})
        terms["stack_group"] = group
    return terms


@transaction
def create_program(session: Session, actor: Account, data: dict[str, Any], now: dt.datetime) -> SubsidyProgram:
    """Staff open a subsidy program with its terms, and its opening budget as a deposit row."""
    require_role(actor, Role.staff, Role.admin)
    if session.scalar(sa.select(SubsidyProgram.id).where(SubsidyProgram.code == data["code"])) is not None:
        raise duplicate("uq_subsidy_programs_code")
    terms = _terms(session, data)
    budget, document = terms.pop("budget"), terms.pop("funding_document")
    program = SubsidyProgram(created_at=now, **terms)
    session.add(program)
    session.flush()
    ledger.post(session, program, LedgerKind.deposit, budget, key=f"deposit:program:{program.id}:opening", now=now,
                actor_id=actor.id, reference=document, note="opening budget")
    return program


@transaction
def update_program(session: Session, actor: Account, program_id: int, data: dict[str, Any]) -> SubsidyProgram:
    """Staff change a program's terms; awards already made keep theirs. The budget moves only by
    deposits and adjustments."""
    require_role(actor, Role.staff, Role.admin)
    program = ledger.lock_program(session, program_id)
    if program.status is ProgramStatus.closed:
        raise Conflict(f"Subsidy program {program.code} is closed.")
    terms = _terms(session, data)
    starts_on, ends_on = terms.get("starts_on", program.starts_on), terms.get("ends_on", program.ends_on)
    if starts_on >= ends_on:
        raise InvalidInput("The period is empty.", {"ends_on": ["Must be after starts_on."]})
    mode, allotment = terms.get("mode", program.mode), terms.get("allotment_per_startup", program.allotment_per_startup)
    if mode is ProgramMode.allotment and not allotment:
        raise InvalidInput("An allotment program names its free units.", {"allotment_per_startup": ["Required for an allotment."]})
    program.audit_as("update")
    for name, value in terms.items():
        setattr(program, name, value)
    return program


@transaction
def change_program_status(session: Session, actor: Account, program_id: int, change: str) -> SubsidyProgram:
    """Staff pause a program (no new awards), reopen it, or close it for good; awards made stay."""
    require_role(actor, Role.staff, Role.admin)
    program = ledger.lock_program(session, program_id)
    program.change_status(change)
    return program


@transaction
def create_stack_group(session: Session, actor: Account, data: dict[str, Any], now: dt.datetime) -> StackGroup:
    """Staff define programs that may pay together (市区协同) and their combined share of the cost."""
    require_role(actor, Role.staff, Role.admin)
    if session.scalar(sa.select(StackGroup.id).where(StackGroup.code == data["code"])) is not None:
        raise duplicate("uq_subsidy_stack_groups_code")
    group = StackGroup(created_at=now, **data)
    session.add(group)
    return group


def list_stack_groups(session: Session) -> list[StackGroup]:
    return list(session.scalars(sa.select(StackGroup).order_by(StackGroup.id)))


def list_audit(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """Staff and admins read the audit log, newest first."""
    require_role(actor, Role.staff, Role.admin)
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc())
    for name in ("entity_type", "entity_id", "actor_id", "acting_staff_id", "action"):
        if name in filters:
            query = query.where(getattr(AuditEntry, name) == filters[name])
    return query
