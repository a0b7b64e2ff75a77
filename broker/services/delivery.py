"""What the carrier page's delivery screen (交付与结算) reads: the usage the carrier reported per
allocation on its offers, with the subsidy that usage redeemed in the ledger.

Reading only: usage comes in through `provisioning.pull_usage` (which redeems it through
`subsidies.redeem_usage`). A page is one query (the sums as correlated subqueries on indexed
columns) and one for its total, whatever the number of allocations or reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import Money
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    LedgerEntry,
    LedgerKind,
    Offer,
    ResourceRequest,
    Role,
    Startup,
    UsageReport,
)
from broker.services.accounts import require_role
from broker.services.market import STARTUP_SHOWN_TO_CARRIER
from broker.services.settlement import Period

# The allocations something can be delivered on: approved at some point (not proposed, rejected or lapsed).
DELIVERED = (AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active,
             AllocationStatus.released, AllocationStatus.cancelled)


@dataclass(frozen=True)
class UsageLine:
    """One allocation on the carrier's offers and the usage reported on it (in `month`, if one was asked for)."""

    allocation_id: int
    status: AllocationStatus
    offer_external_id: str
    kind: str
    granted: Decimal
    used: Decimal
    last_reported_at: dt.datetime | None
    redeemed: Decimal  # subsidy the reports redeemed, from the ledger's redeem rows, in yuan
    startup_name: str | None  # only while the allocation is approved, provisioning or active


@dataclass(frozen=True)
class CarrierUsage:
    lines: list[UsageLine]
    total: int


def _query(actor: Account, status: AllocationStatus | None, kind: str | None, month: Period | None) -> tuple[sa.Select, list]:
    require_role(actor, Role.carrier)
    where: list = [Offer.carrier_id == actor.carrier_id,
                   Allocation.status == status if status in DELIVERED else Allocation.status.in_(DELIVERED)]
    if kind is not None:
        where.append(Offer.kind == kind)
    reports = [UsageReport.allocation_id == Allocation.id]
    if month is not None:
        reports += [UsageReport.recorded_at >= month.starts_at, UsageReport.recorded_at < month.ends_at]
        where.append(sa.exists().where(*reports))
    used = (sa.select(sa.func.coalesce(sa.func.sum(UsageReport.quantity), 0, type_=UsageReport.quantity.type))
            .where(*reports).correlate(Allocation).scalar_subquery())
    last = sa.select(sa.func.max(UsageReport.recorded_at)).where(*reports).correlate(Allocation).scalar_subquery()
    redeemed = (sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0, type_=Money()))
                .join(UsageReport, UsageReport.id == LedgerEntry.usage_report_id)
                .where(LedgerEntry.kind == LedgerKind.redeem, *reports).correlate(Allocation).scalar_subquery())
    columns = (sa.select(Allocation.id, Allocation.status, Offer.external_id, Offer.kind, Allocation.quantity, used, last,
                         redeemed, Startup.name)
               .join(Offer, Allocation.offer_id == Offer.id).join(ResourceRequest, Allocation.request_id == ResourceRequest.id)
               .join(Startup, ResourceRequest.startup_id == Startup.id).where(*where))
    return columns, where


def _line(row: sa.Row) -> UsageLine:
    values = list(row)
    if values[1] not in STARTUP_SHOWN_TO_CARRIER:
        values[8] = None
    return UsageLine(*values)


def carrier_usage(session: Session, actor: Account, *, status: AllocationStatus | None = None, kind: str | None = None,
                  month: Period | None = None, offset: int = 0, limit: int = 50) -> CarrierUsage:
    """A page of the allocations on the carrier's offers with their reported usage, newest first, and how many match."""
    query, where = _query(actor, status, kind, month)
    total = session.scalar(sa.select(sa.func.count(Allocation.id)).join(Offer, Allocation.offer_id == Offer.id)
                           .where(*where)) or 0
    rows = session.execute(query.order_by(Allocation.id.desc()).offset(offset).limit(limit))
    return CarrierUsage([_line(row) for row in rows], total)


def carrier_usage_export(session: Session, actor: Account, *, status: AllocationStatus | None = None,
                         kind: str | None = None, month: Period | None = None) -> Iterator[UsageLine]:
    """Every line `carrier_usage` would page through, oldest first, read in batches."""
    query, _ = _query(actor, status, kind, month)
    for row in session.execute(query.order_by(Allocation.id).execution_options(yield_per=1000)):
        yield _line(row)
