"""What startups and carriers declare for subsidy eligibility: their related parties (shareholders
and affiliates, by unified social credit code) and the other public subsidies a startup holds."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, Money, utcnow
from broker.models.audit import Audited
from broker.models.enums import enum_column_type


class Relation(enum.StrEnum):
    shareholder = "shareholder"  # holds shares in the declaring company (股东)
    affiliate = "affiliate"  # under common control or otherwise connected (关联企业)


class SubsidyLevel(enum.StrEnum):
    national = "national"
    city = "city"  # 市级
    district = "district"  # 区级


class RelatedParty(Audited, Base):
    """One company a startup or a carrier declares related to it. Its list is replaced whole
    (`broker.services.declarations`); each row written or removed is in the audit log."""

    __tablename__ = "related_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    uscc: Mapped[str] = mapped_column(sa.String(18), index=True)  # 统一社会信用代码
    name: Mapped[str] = mapped_column(sa.String(200))
    relation: Mapped[Relation] = mapped_column(enum_column_type(Relation))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("(startup_id IS NULL) <> (carrier_id IS NULL)", name="one_declarant"),
        sa.CheckConstraint("length(uscc) = 18", name="uscc_length"),
        sa.Index("uq_related_parties_startup_uscc", "startup_id", "uscc", unique=True,
                 sqlite_where=sa.text("startup_id IS NOT NULL"), postgresql_where=sa.text("startup_id IS NOT NULL")),
        sa.Index("uq_related_parties_carrier_uscc", "carrier_id", "uscc", unique=True,
                 sqlite_where=sa.text("carrier_id IS NOT NULL"), postgresql_where=sa.text("carrier_id IS NOT NULL")),
    )


class OtherSubsidy(Audited, Base):
    """A public subsidy the startup holds from elsewhere for one contract: an allocation of
    this platform, or what one carrier supplies of one kind."""

    __tablename__ = "other_subsidies"

    id: Mapped[int] = mapped_column(primary_key=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    level: Mapped[SubsidyLevel] = mapped_column(enum_column_type(SubsidyLevel))
    name: Mapped[str] = mapped_column(sa.String(200))
    granting_body: Mapped[str] = mapped_column(sa.String(200))
    amount: Mapped[Decimal] = mapped_column(Money())
    allocation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("allocations.id"))
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"))
    kind: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        # For one allocation, or for one carrier and kind: never both, never neither.
        sa.CheckConstraint(
            "(allocation_id IS NOT NULL AND carrier_id IS NULL AND kind IS NULL) OR "
            "(allocation_id IS NULL AND carrier_id IS NOT NULL AND kind IS NOT NULL)",
            name="one_contract",
        ),
    )
