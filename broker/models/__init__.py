"""SQLAlchemy 2 typed models. Importing this package registers every table on Base.metadata."""

from broker.models.audit import Audited, AuditEntry
from broker.models.enums import (
    LIGHTHOUSE_SECTORS,
    TURNED_AWAY_STARTUP_STATUSES,
    AllocationStatus,
    CycleStatus,
    OfferStatus,
    ProgramStatus,
    RequestStatus,
    Role,
    Sector,
    StartupStatus,
)
from broker.models.market import Allocation, MatchingCycle, Offer, ResourceRequest
from broker.models.parties import Account, ApiToken, Carrier, Startup
from broker.models.policy import IdempotencyRecord, Policy, SubsidyCommitment, SubsidyProgram
from broker.models.sync import CarrierSync, ConflictKind, QuarantinedRecord, SyncConflict, SyncSource, SyncStatus
from broker.models.workflow import (
    Appeal,
    AppealStatus,
    DeliveryStatus,
    Event,
    JobRun,
    UsageReport,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "Appeal",
    "AppealStatus",
    "DeliveryStatus",
    "Event",
    "JobRun",
    "UsageReport",
    "WebhookDelivery",
    "WebhookSubscription",
    "LIGHTHOUSE_SECTORS",
    "TURNED_AWAY_STARTUP_STATUSES",
    "Account",
    "Allocation",
    "AllocationStatus",
    "ApiToken",
    "AuditEntry",
    "Audited",
    "Carrier",
    "CarrierSync",
    "ConflictKind",
    "CycleStatus",
    "IdempotencyRecord",
    "MatchingCycle",
    "Offer",
    "OfferStatus",
    "Policy",
    "QuarantinedRecord",
    "ProgramStatus",
    "RequestStatus",
    "ResourceRequest",
    "Role",
    "Sector",
    "Startup",
    "StartupStatus",
    "SubsidyCommitment",
    "SubsidyProgram",
    "SyncConflict",
    "SyncSource",
    "SyncStatus",
]
