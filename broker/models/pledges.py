"""What a carrier pledges to the district for a period (运营商承诺资源): per kind, a quantity and its terms."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Money, Quantity, Ratio, utcnow
from broker.models.audit import Audited
from broker.models.enums import enum_column_type
from broker.models.market import kind_column_type
from broker.models.parties import Carrier


class PledgeTerms(enum.StrEnum):
    free = "free"  # granted to startups at no charge
    discounted = "discounted"  # at the pledged unit price, or at the discount rate off the list price


class Pledge(Audited, Base):
    """One carrier × period × kind: the quantity pledged (in the kind's unit) and on what terms.

    Revising a pledge replaces its figures in place; the audit log keeps what they were.
    """

    __tablename__ = "pledges"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    period: Mapped[str] = mapped_column(sa.String(7))  # 2027-Q1 or 2027-01
    first_day: Mapped[dt.date]
    last_day: Mapped[dt.date]  # inclusive, Asia/Shanghai
    kind: Mapped[str] = mapped_column(kind_column_type())
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    terms: Mapped[PledgeTerms] = mapped_column(enum_column_type(PledgeTerms))
    unit_price: Mapped[Decimal | None] = mapped_column(Money())  # yuan per unit, to the fen
    discount_rate: Mapped[Decimal | None] = mapped_column(Ratio())  # share off the list price: 0.2 is 八折
    note: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    carrier: Mapped[Carrier] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("carrier_id", "period", "kind"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("first_day <= last_day", name="days_ordered"),
        sa.CheckConstraint(
            "(terms = 'free' AND unit_price IS NULL AND discount_rate IS NULL) OR "
            "(terms = 'discounted' AND (unit_price IS NULL) <> (discount_rate IS NULL))",
            name="terms_priced",
        ),
        sa.CheckConstraint("unit_price IS NULL OR unit_price >= 0", name="unit_price_not_negative"),
        sa.CheckConstraint("discount_rate IS NULL OR (discount_rate > 0 AND discount_rate < 10000)",
                           name="discount_rate_in_range"),
        sa.Index("ix_pledges_period_kind", "period", "kind"),
    )

    def revise(self, quantity: Decimal, terms: PledgeTerms, unit_price: Decimal | None,
               discount_rate: Decimal | None, note: str, recorded_by_id: int) -> None:
        """Replace the figures (the audit log records the change as a revision)."""
        self.audit_as("revise")
        self.quantity, self.terms, self.unit_price, self.discount_rate = quantity, terms, unit_price, discount_rate
        self.note, self.recorded_by_id = note, recorded_by_id
