"""What the staff's report screens read: a cycle with the requests it left short, the policy's
versions, and the audit log searched by time as well. Read-only; no Flask."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker.models import Account, AuditEntry, MatchingCycle, Policy, ResourceRequest, Role
from broker.services import cycles, policy
from broker.services.accounts import require_role


@dataclass(frozen=True)
class ShortRequest:
    request_id: int
    reason: str
    request: ResourceRequest | None


@dataclass(frozen=True)
class CycleReport:
    cycle: MatchingCycle
    short: list[ShortRequest]


def cycle_report(session: Session, actor: Account, cycle_id: int) -> CycleReport:
    """A cycle and every request it left short, with the request itself (its startup, kind, quantity)."""
    cycle = cycles.get_cycle(session, actor, cycle_id)
    unfilled = (cycle.stats or {}).get("unfilled", [])
    ids = [u["request_id"] for u in unfilled]
    # The page names each request's startup: loaded with the requests, not one query per row.
    found = {r.id: r for r in session.scalars(sa.select(ResourceRequest).where(ResourceRequest.id.in_(ids))
                                              .options(selectinload(ResourceRequest.startup)))} if ids else {}
    return CycleReport(cycle, [ShortRequest(u["request_id"], u["reason"], found.get(u["request_id"])) for u in unfilled])


def policy_versions(session: Session, actor: Account) -> list[Policy]:
    """Every saved version of the policy, newest first."""
    require_role(actor, Role.staff, Role.admin)
    return list(session.scalars(sa.select(Policy).order_by(Policy.id.desc())))


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int
    actors: dict[int, str]


def search_audit(session: Session, actor: Account, filters: dict[str, Any], since: dt.datetime | None,
                 until: dt.datetime | None, offset: int, limit: int) -> AuditPage:
    """The audit log (policy.list_audit's filters, newest first) within [since, until), one page of it."""
    query = policy.list_audit(session, actor, filters)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    entries = list(session.scalars(query.offset(offset).limit(limit)))
    ids = {i for e in entries for i in (e.actor_id, e.acting_staff_id) if i is not None}
    names = dict(session.execute(sa.select(Account.id, Account.name).where(Account.id.in_(ids))).all()) if ids else {}
    return AuditPage(entries, total, names)


def list_cycles(session: Session, actor: Account, limit: int) -> list[MatchingCycle]:
    """The newest `limit` cycles, newest first."""
    return list(session.scalars(cycles.list_cycles(session, actor).limit(limit)))


@dataclass(frozen=True)
class PolicyPage:
    current: Policy
    versions: list[Policy]


def policy_page(session: Session, actor: Account) -> PolicyPage:
    """The policy in force (the default until staff save one) and every saved version, newest first."""
    return PolicyPage(policy.current_policy(session), policy_versions(session, actor))
