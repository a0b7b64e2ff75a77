"""Demand survey (需求摸排): staff open a campaign for a period and the kinds it covers; each
verified startup declares the demand it expects per kind, region and month, even where no offer
exists yet, and may revise it until the campaign closes.

A declaration line is unique per (campaign, startup, kind, region, month): declaring the same line
again replaces it, never adds a second one.

Where staff allow it, a firm not registered on the broker answers by its unified social credit code
(`SurveyRespondent`, one per campaign and code): its lines wait in `pending_lines` until the emailed
link is opened and confirmed, then become declaration lines of the respondent (`respondent_id`
instead of `startup_id`). When a startup holding that code is verified, its respondents' lines become
the startup's (`broker.services.survey_attach`), so they are counted once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, Money, Quantity, utcnow
from broker.models.audit import Audited
from broker.models.enums import Sector, enum_column_type

MAX_TITLE = 200
MAX_PERIOD = 16
MAX_REGION = 64
MAX_PURPOSE = 500
MAX_FIRM_NAME = 200
MAX_CONTACT_NAME = 64
MAX_EMAIL = 254


class SurveyCampaign(Audited, Base):
    """One survey for a period: open from `opens_on` to the end of `closes_on` (Asia/Shanghai dates)."""

    __tablename__ = "survey_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(MAX_TITLE))
    period: Mapped[str] = mapped_column(sa.String(MAX_PERIOD))  # "2027-Q1", "2027-H2", "2027"
    opens_on: Mapped[dt.date]
    closes_on: Mapped[dt.date]
    kinds: Mapped[list] = mapped_column(sa.JSON)  # codes of broker.resources.KINDS, sorted
    # Whether firms not registered on the broker may answer (by USCC): recorded now, taken later.
    allow_unregistered: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[dt.datetime | None]  # when the reminder job last wrote its emails

    __table_args__ = (sa.CheckConstraint("opens_on <= closes_on", name="dates_ordered"),)

    def status(self, today: dt.date) -> str:
        """'scheduled', 'open' or 'closed' on `today` (an Asia/Shanghai date): derived, never stored."""
        if today < self.opens_on:
            return "scheduled"
        return "open" if today <= self.closes_on else "closed"


class SurveyRespondent(Base):
    """A firm not registered on the broker answering one campaign, by its unified social credit code.

    Nothing it sends counts until its contact opens the emailed link and confirms: `pending_lines`
    holds the lines sent and not yet confirmed (at most one such answer per code and campaign).
    """

    __tablename__ = "survey_respondents"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("survey_campaigns.id"))
    uscc: Mapped[str] = mapped_column(sa.String(18))
    firm_name: Mapped[str] = mapped_column(sa.String(MAX_FIRM_NAME))
    contact_name: Mapped[str] = mapped_column(sa.String(MAX_CONTACT_NAME))
    contact_email: Mapped[str] = mapped_column(sa.String(MAX_EMAIL))
    sector: Mapped[Sector] = mapped_column(enum_column_type(Sector))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # of the newest emailed link's secret
    pending_lines: Mapped[list | None] = mapped_column(sa.JSON(none_as_null=True))  # sent, waiting for the link's confirmation
    pending_since: Mapped[dt.datetime | None]
    confirmed_at: Mapped[dt.datetime | None]  # first confirmed; None: nothing of it counts
    # The startup its lines were moved to when a registration holding its code was verified.
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "uscc"),
        sa.CheckConstraint("length(uscc) = 18", name="uscc_length"),
        sa.CheckConstraint("(pending_lines IS NULL) = (pending_since IS NULL)", name="pending_has_time"),
    )

    def status(self) -> str:
        """'attached' (moved to a startup), 'confirmed' or 'pending' (nothing of it counts yet)."""
        if self.startup_id is not None:
            return "attached"
        return "confirmed" if self.confirmed_at is not None else "pending"


class SurveyDeclaration(Base):
    """One line of a startup's (or an unregistered respondent's) expected demand in a campaign."""

    __tablename__ = "survey_declarations"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("survey_campaigns.id"))
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    respondent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("survey_respondents.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    region: Mapped[str] = mapped_column(sa.String(MAX_REGION))
    month: Mapped[dt.date]  # the first day of a month within the campaign's period
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    max_unit_price: Mapped[Decimal | None] = mapped_column(Money())  # the most it could pay per unit, yuan
    purpose: Mapped[str] = mapped_column(sa.String(MAX_PURPOSE))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "startup_id", "kind", "region", "month"),
        sa.UniqueConstraint("campaign_id", "respondent_id", "kind", "region", "month"),
        sa.CheckConstraint("(startup_id IS NULL) <> (respondent_id IS NULL)", name="one_declarant"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("max_unit_price IS NULL OR max_unit_price >= 0", name="price_not_negative"),
    )
