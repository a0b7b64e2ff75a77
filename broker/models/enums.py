"""The closed vocabularies of the domain; stored as their values behind a CHECK constraint."""

from __future__ import annotations

import enum

import sqlalchemy as sa


class Role(enum.StrEnum):
    admin = "admin"
    staff = "staff"
    carrier = "carrier"
    startup = "startup"


class Sector(enum.StrEnum):
    # The three "Lighthouse" (灯塔) sectors first; DESIGN.md gives them the highest weight.
    smart_driving = "smart_driving"  # 智能驾驶
    energy_management = "energy_management"  # 能源管理
    smart_healthcare = "smart_healthcare"  # 智慧医疗
    ai_models = "ai_models"  # 大模型与AI应用
    industrial_software = "industrial_software"  # 工业软件
    fintech = "fintech"  # 金融科技
    digital_culture = "digital_culture"  # 数字文创
    ecommerce = "ecommerce"  # 电子商务
    life_sciences = "life_sciences"  # 生命科学
    other = "other"


LIGHTHOUSE_SECTORS = frozenset({Sector.smart_driving, Sector.energy_management, Sector.smart_healthcare})


class StartupStatus(enum.StrEnum):
    pending = "pending"
    verified = "verified"
    suspended = "suspended"
    rejected = "rejected"  # staff turned the registration down while it was pending
    removed = "removed"  # staff found it made in another company's name (squatted), at any stage


# A registration in one of these no longer holds its credit code: the company may register again.
TURNED_AWAY_STARTUP_STATUSES = frozenset({StartupStatus.rejected, StartupStatus.removed})


class OfferStatus(enum.StrEnum):
    active = "active"
    withdrawn = "withdrawn"


class OfferChannel(enum.StrEnum):
    """How a carrier last published an offer; only a pull's own offers can leave with the pull."""

    pull = "pull"  # the broker's scheduled fetch of the whole catalogue
    webhook = "webhook"  # a signed push from the carrier's systems
    api = "api"  # POST /api/v1/offers
    upload = "upload"  # a CSV/XLSX catalog uploaded by the carrier


class WithdrawnBy(enum.StrEnum):
    """Who took an offer off the market: a carrier's own withdrawal outlives its next pull."""

    carrier = "carrier"  # POST /api/v1/offers/{id}/withdraw
    sync = "sync"  # a complete pull no longer listed it


class RequestStatus(enum.StrEnum):
    submitted = "submitted"
    proposed = "proposed"
    approved = "approved"
    active = "active"
    completed = "completed"
    rejected = "rejected"
    withdrawn = "withdrawn"
    expired = "expired"


OPEN_REQUEST_STATUSES = frozenset({RequestStatus.submitted, RequestStatus.proposed})


class CycleStatus(enum.StrEnum):
    scheduled = "scheduled"
    running = "running"
    proposed = "proposed"
    closed = "closed"
    failed = "failed"


class AllocationStatus(enum.StrEnum):
    proposed = "proposed"
    approved = "approved"
    provisioning = "provisioning"
    active = "active"
    released = "released"
    rejected = "rejected"
    lapsed = "lapsed"
    cancelled = "cancelled"  # approved, then ended before the startup could use it


class ProgramStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    paused = "paused"  # no new awards until reopened; existing awards go on
    closed = "closed"


def enum_column_type(enum_cls: type[enum.StrEnum]) -> sa.Enum:
    """A portable enum: VARCHAR plus a named CHECK constraint, the same on SQLite and PostgreSQL."""
    return sa.Enum(
        enum_cls,
        name=enum_cls.__name__.lower(),
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
