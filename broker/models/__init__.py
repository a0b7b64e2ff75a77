"""SQLAlchemy 2 typed models. Importing this package registers every table on Base.metadata."""

from broker.models.audit import Audited, AuditEntry
from broker.models.enums import (
    LIGHTHOUSE_SECTORS,
    AllocationStatus,
    CycleStatus,
    OfferChannel,
    OfferStatus,
    ProgramStatus,
    RequestStatus,
    Role,
    Sector,
    StartupStatus,
    WithdrawnBy,
)
from broker.models.market import Allocation, MatchingCycle, Offer, ResourceRequest
from broker.models.parties import Account, ApiToken, Carrier, Startup
from broker.models.policy import IdempotencyRecord, Policy, SubsidyCommitment, SubsidyProgram
from broker.models.sync import (
    CarrierSync,
    ConflictKind,
    QuarantinedRecord,
    SyncConflict,
    SyncSource,
    SyncStatus,
)
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
    "OfferChannel",
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
    "WithdrawnBy",
]
