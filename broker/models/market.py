"""Supply and demand: carriers' offers, startups' requests, matching cycles and allocations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.clock import SHANGHAI
from broker.db import Base, Quantity, UnitPrice, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import (
    OPEN_REQUEST_STATUSES,
    AllocationStatus,
    CycleStatus,
    OfferChannel,
    OfferStatus,
    RequestStatus,
    WithdrawnBy,
    enum_column_type,
)
from broker.models.ledger import Award
from broker.models.parties import Account, Carrier, Startup
from broker.resources import KIND_NAMES

WITHDRAWABLE_REQUEST_STATUSES = frozenset(
    {RequestStatus.submitted, RequestStatus.proposed, RequestStatus.approved, RequestStatus.active}
)
_GRANTED_ALLOCATION_STATUSES = frozenset(
    {AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active, AllocationStatus.released}
)


def kind_column_type() -> sa.Enum:
    return sa.Enum(*KIND_NAMES, name="kind", native_enum=False, create_constraint=True, length=16)


class Offer(Audited, Base):
    """One capacity lot from one carrier, in broker units; `promised` is what allocations hold."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    external_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(kind_column_type())
    region: Mapped[str] = mapped_column(sa.String(64))
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    promised: Mapped[Decimal] = mapped_column(Quantity(), default=Decimal(0))
    window_start: Mapped[dt.date]
    window_end: Mapped[dt.date]
    list_price: Mapped[Decimal] = mapped_column(UnitPrice())
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice())
    divisible: Mapped[bool] = mapped_column(default=True)
    status: Mapped[OfferStatus] = mapped_column(enum_column_type(OfferStatus), default=OfferStatus.active)
    # The channel that last published it (see broker.services.feed_writer): a full pull withdraws only
    # offers whose channel is pull.
    channel: Mapped[OfferChannel] = mapped_column(enum_column_type(OfferChannel), default=OfferChannel.api)
    # Set while withdrawn: a carrier's own withdrawal is not undone by a pull or a push.
    withdrawn_by: Mapped[WithdrawnBy | None] = mapped_column(enum_column_type(WithdrawnBy))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    carrier: Mapped[Carrier] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("carrier_id", "external_id"),
        sa.CheckConstraint("quantity > 0 OR status = 'withdrawn'", name="quantity_positive"),
        sa.CheckConstraint("promised >= 0", name="promised_not_negative"),
        sa.CheckConstraint("promised <= quantity", name="promised_within_quantity"),
        sa.CheckConstraint("window_start < window_end", name="window_ordered"),
        sa.CheckConstraint("list_price >= 0 AND unit_price >= 0", name="prices_not_negative"),
        sa.CheckConstraint("unit_price <= list_price", name="unit_price_within_list_price"),
        sa.CheckConstraint("kind <> 'data_line' OR NOT divisible", name="data_line_indivisible"),
        sa.CheckConstraint("(status = 'withdrawn') = (withdrawn_by IS NOT NULL)", name="withdrawn_by_when_withdrawn"),
        sa.Index("ix_offers_kind_status", "kind", "status"),
    )

    @property
    def available(self) -> Decimal:
        return self.quantity - self.promised

    def withdraw(self) -> None:
        """The carrier takes the lot off the market, keeping only what is already promised from it;
        no pull or push puts it back, only the carrier publishing it again (API or upload)."""
        if self.status is OfferStatus.withdrawn:
            raise Conflict("Offer is already withdrawn.")
        self.audit_as("withdraw")
        self.status = OfferStatus.withdrawn
        self.withdrawn_by = WithdrawnBy.carrier
        self.quantity = self.promised

    def publish(self, channel: OfferChannel, values: dict) -> bool:
        """The carrier published the lot again through `channel` with `values`; returns whether
        anything changed. A withdrawn lot is back on the market."""
        changed = {name: value for name, value in values.items() if getattr(self, name) != value}
        republished = self.status is OfferStatus.withdrawn
        if self.channel is not channel:
            changed["channel"] = channel
        for name, value in changed.items():
            setattr(self, name, value)
        if republished:
            self.republish()
        return bool(changed) or republished

    def republish(self) -> None:
        """A withdrawn lot is back on the market (its carrier published it again)."""
        if self.status is not OfferStatus.withdrawn:
            raise Conflict("Offer is not withdrawn.")
        self.audit_as("republish")
        self.status = OfferStatus.active
        self.withdrawn_by = None


class ResourceRequest(Audited, Base):
    __tablename__ = "resource_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    kind: Mapped[str] = mapped_column(kind_column_type())
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    min_quantity: Mapped[Decimal | None] = mapped_column(Quantity())
    regions: Mapped[list | None] = mapped_column(sa.JSON)  # None: any region
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # name -> acceptable values
    window_start: Mapped[dt.date]
    window_end: Mapped[dt.date]
    max_unit_price: Mapped[Decimal | None] = mapped_column(UnitPrice())
    purpose: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[RequestStatus] = mapped_column(
        enum_column_type(RequestStatus), default=RequestStatus.submitted, index=True
    )
    cycles_waited: Mapped[int] = mapped_column(default=0)
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    startup: Mapped[Startup] = relationship()
    allocations: Mapped[list[Allocation]] = relationship(back_populates="request", order_by="Allocation.id")

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint(
            "min_quantity IS NULL OR (min_quantity > 0 AND min_quantity <= quantity)", name="min_within_quantity"
        ),
        sa.CheckConstraint("window_start < window_end", name="window_ordered"),
        sa.CheckConstraint("max_unit_price IS NULL OR max_unit_price >= 0", name="max_price_not_negative"),
        sa.CheckConstraint("cycles_waited >= 0", name="cycles_waited_not_negative"),
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REQUEST_STATUSES

    def withdraw(self) -> None:
        """The startup no longer wants it; broker.services.allocations.withdraw ends or releases what
        was granted for it."""
        if self.status not in WITHDRAWABLE_REQUEST_STATUSES:
            raise Conflict(f"A {self.status.value} request cannot be withdrawn.")
        self.audit_as("withdraw")
        self.status = RequestStatus.withdrawn

    def propose(self) -> None:
        """A cycle proposed allocations for it; staff decide next."""
        if self.status is not RequestStatus.submitted:
            raise Conflict(f"A {self.status.value} request cannot be proposed.")
        self.audit_as("propose")
        self.status = RequestStatus.proposed

    def wait_another_cycle(self) -> None:
        """Left short this cycle: it stays queued and gains priority for the next one."""
        self.cycles_waited += 1

    def settle(self, today: dt.date) -> None:
        """Follow its allocations once a decision on one of them is made."""
        statuses = {a.status for a in self.allocations}
        if self.status is RequestStatus.withdrawn or statuses & {AllocationStatus.proposed}:
            return  # a withdrawn request stays withdrawn while its allocations are released
        if statuses & {AllocationStatus.active}:
            new = RequestStatus.active
        elif statuses & {AllocationStatus.approved, AllocationStatus.provisioning}:
            new = RequestStatus.approved
        elif AllocationStatus.released in statuses:
            new = RequestStatus.completed
        elif self.window_start < today:
            new = RequestStatus.expired  # nothing was granted and its window has begun
        else:
            new = RequestStatus.submitted  # back in the queue, having waited one more cycle
            if self.status is RequestStatus.proposed:
                self.cycles_waited += 1
        if new is not self.status:
            self.audit_as(new.value if new is not RequestStatus.submitted else "requeue")
            self.status = new

    def expire(self) -> None:
        """Its window began and nothing was granted."""
        if self.status is not RequestStatus.submitted:
            raise Conflict(f"A {self.status.value} request does not expire.")
        self.audit_as("expire")
        self.status = RequestStatus.expired

    @property
    def granted(self) -> Decimal:
        return sum(
            (a.quantity for a in self.allocations if a.status in _GRANTED_ALLOCATION_STATUSES), Decimal(0)
        )


class MatchingCycle(Audited, Base):
    __tablename__ = "matching_cycles"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[CycleStatus] = mapped_column(enum_column_type(CycleStatus), default=CycleStatus.scheduled)
    scheduled_for: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    approval_deadline: Mapped[dt.datetime | None]
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    stats: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # objective, bound, gap, counts
    error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint(
            "approval_deadline IS NULL OR started_at IS NULL OR approval_deadline > started_at",
            name="deadline_after_start",
        ),
        # At most one running cycle, whatever the code does.
        sa.Index(
            "uq_matching_cycles_one_running",
            "status",
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        ),
    )

    def start(self, now: dt.datetime) -> None:
        self._require(CycleStatus.scheduled)
        self.audit_as("start")
        self.status = CycleStatus.running
        self.started_at = now

    def propose(self, stats: dict, deadline: dt.datetime, now: dt.datetime) -> None:
        """The engine answered: proposals are written and wait for staff until `deadline`."""
        self._require(CycleStatus.running)
        self.audit_as("propose")
        self.status = CycleStatus.proposed
        self.stats = stats
        self.approval_deadline = deadline
        self.finished_at = now

    def close(self) -> None:
        """The approval window is over: every proposal was decided or has lapsed."""
        self._require(CycleStatus.proposed)
        self.audit_as("close")
        self.status = CycleStatus.closed

    def fail(self, error: str, now: dt.datetime) -> None:
        self.audit_as("fail")
        self.status = CycleStatus.failed
        self.error = error
        self.finished_at = now

    def accepts_decisions(self, now: dt.datetime) -> bool:
        return self.status is CycleStatus.proposed and self.approval_deadline is not None and now < self.approval_deadline

    def _require(self, *statuses: CycleStatus) -> None:
        if self.status not in statuses:
            raise Conflict(f"Cycle {self.id} is {self.status.value}.")


class Allocation(Audited, Base):
    """One request × one offer × a quantity, proposed by a cycle and decided by staff."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(sa.ForeignKey("matching_cycles.id"), index=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("resource_requests.id"), index=True)
    offer_id: Mapped[int] = mapped_column(sa.ForeignKey("offers.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice())
    status: Mapped[AllocationStatus] = mapped_column(
        enum_column_type(AllocationStatus), default=AllocationStatus.proposed, index=True
    )
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    decided_at: Mapped[dt.datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)
    carrier_ref: Mapped[str | None] = mapped_column(sa.String(128))
    # How the startup uses it, as the carrier's adapter returned it (adapters.base.AccessDetails.stored():
    # display-safe fields, never a secret); NULL when the carrier said nothing. Shown to the startup only.
    access_details: Mapped[dict | None] = mapped_column(sa.JSON)
    provision_attempts: Mapped[int] = mapped_column(default=0)
    # When provisioning is tried next; NULL while provisioning means retries are exhausted
    # and staff must look (last_error says why).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    released_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    cycle: Mapped[MatchingCycle] = relationship()
    request: Mapped[ResourceRequest] = relationship(back_populates="allocations")
    offer: Mapped[Offer] = relationship()
    decided_by: Mapped[Account | None] = relationship()
    awards: Mapped[list[Award]] = relationship(order_by="Award.id", viewonly=True)

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        sa.CheckConstraint("provision_attempts >= 0", name="provision_attempts_not_negative"),
        sa.UniqueConstraint("cycle_id", "request_id", "offer_id"),
        # The review queue: a page of a cycle's proposals in id order, and the offers a cycle used.
        sa.Index("ix_allocations_cycle_status", "cycle_id", "status", "id"),
        sa.Index("ix_allocations_offer_cycle", "offer_id", "cycle_id"),
        # A carrier's page: the allocations whose provisioning retries ran out, newest first.
        sa.Index("ix_allocations_provisioning_given_up", "id",
                 sqlite_where=sa.text("status = 'provisioning' AND next_attempt_at IS NULL"),
                 postgresql_where=sa.text("status = 'provisioning' AND next_attempt_at IS NULL")),
    )

    def _require(self, *statuses: AllocationStatus) -> None:
        if self.status not in statuses:
            raise Conflict(f"Allocation {self.id} is {self.status.value}.")

    def withdraw_proposal(self, reason: str, now: dt.datetime) -> None:
        """The request behind a proposal was withdrawn: the proposal ends as rejected."""
        self._require(AllocationStatus.proposed)
        self.audit_as("withdraw")
        self.status = AllocationStatus.rejected
        self.decision_reason = reason
        self.decided_at = now

    @property
    def cost(self) -> Decimal:
        """What the startup pays for it before any subsidy, to the fen."""
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))

    @property
    def subsidy(self) -> Decimal:
        """What its awards promise now (an instant deduction is taken off the price at once)."""
        return sum((a.committed for a in self.awards), Decimal("0.00"))

    def approve(self, by_id: int, reason: str | None, now: dt.datetime) -> None:
        """Staff approve the proposal; its capacity, already held, is now promised for good."""
        self._require(AllocationStatus.proposed)
        self.audit_as("approve")
        self.status = AllocationStatus.approved
        self.decided_by_id, self.decision_reason, self.decided_at = by_id, reason, now

    def reject(self, by_id: int, reason: str, now: dt.datetime) -> None:
        """Staff reject the proposal; broker.services.allocations.reject gives its held capacity back."""
        self._require(AllocationStatus.proposed)
        self.audit_as("reject")
        self.status = AllocationStatus.rejected
        self.decided_by_id, self.decision_reason, self.decided_at = by_id, reason, now

    def lapse(self, now: dt.datetime) -> None:
        """No decision before the deadline; broker.services.allocations.lapse gives its held capacity back."""
        self._require(AllocationStatus.proposed)
        self.audit_as("lapse")
        self.status = AllocationStatus.lapsed
        self.decision_reason, self.decided_at = "no decision before the approval deadline", now

    def begin_provisioning(self, now: dt.datetime, lease: dt.timedelta) -> None:
        """About to ask the carrier; a crash from here on is retried with the same idempotency key.

        The attempt holds a lease: until `now + lease` it is in flight (not due, not given up);
        if its outcome is never recorded, the next attempt is due when the lease ends.
        """
        self._require(AllocationStatus.approved, AllocationStatus.provisioning)
        if self.status is AllocationStatus.approved:
            self.audit_as("provision")
            self.status = AllocationStatus.provisioning
        self.provision_attempts += 1
        self.next_attempt_at = now + lease

    def provisioned(self, carrier_ref: str, now: dt.datetime, access_details: dict | None = None) -> None:
        """The carrier confirmed: the startup can use it (how, in `access_details`, when the carrier said)."""
        self._require(AllocationStatus.provisioning)
        self.audit_as("activate")
        self.status = AllocationStatus.active
        self.carrier_ref = carrier_ref
        self.access_details = access_details
        self.last_error = None
        self.next_attempt_at = None

    def provisioning_failed(self, error: str, retry_at: dt.datetime | None) -> None:
        """The carrier call failed; retried at `retry_at`, or left for staff when None."""
        self._require(AllocationStatus.provisioning)
        self.audit_as("provisioning_failed")
        self.last_error = error
        self.next_attempt_at = retry_at

    def retry_provisioning(self, now: dt.datetime) -> None:
        """Staff ask for one more attempt after its retries ran out: it is due again at `now`."""
        if not self.provisioning_given_up:
            raise Conflict("Only an allocation whose provisioning retries ran out can be retried by hand.")
        self.audit_as("retry_provisioning")
        self.next_attempt_at = now

    @property
    def provisioning_given_up(self) -> bool:
        """Its provisioning retries ran out: staff retry it by hand or cancel it."""
        return self.status is AllocationStatus.provisioning and self.next_attempt_at is None

    def cancel(self, reason: str, now: dt.datetime) -> None:
        """Approved but never sent to the carrier, and no longer wanted: nothing to release there.

        Called through broker.services.allocations.cancel, which gives its capacity and its subsidy
        commitment back.
        """
        self._require(AllocationStatus.approved)
        self.audit_as("cancel")
        self.status = AllocationStatus.cancelled
        self.decision_reason = reason
        self.released_at = now  # when its capacity went back

    def give_up_provisioning(self, reason: str, now: dt.datetime) -> None:
        """Staff end an allocation whose provisioning retries ran out. Called through
        broker.services.allocations.cancel, which gives everything back."""
        if not self.provisioning_given_up:
            if self.status is AllocationStatus.provisioning:
                raise Conflict(
                    f"Allocation {self.id} is still being provisioned (next attempt at "
                    f"{self.next_attempt_at.astimezone(SHANGHAI).isoformat()}); it can be cancelled once its retries have run out."
                )
            raise Conflict(f"Allocation {self.id} is {self.status.value}.")
        self.audit_as("cancel")
        self.status = AllocationStatus.cancelled
        self.decision_reason = reason
        self.released_at = now

    def release(self, now: dt.datetime) -> None:
        """Its window is over (or it was withdrawn): the carrier took it back."""
        self._require(AllocationStatus.active)
        self.audit_as("release")
        self.status = AllocationStatus.released
        self.released_at = now
