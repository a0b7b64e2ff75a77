"""SQLAlchemy 2 typed models. Importing this package registers every table on Base.metadata."""

from broker.models.audit import Audited, AuditEntry
from broker.models.enums import (
    LIGHTHOUSE_SECTORS,
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

__all__ = [
    "LIGHTHOUSE_SECTORS",
    "Account",
    "Allocation",
    "AllocationStatus",
    "ApiToken",
    "AuditEntry",
    "Audited",
    "Carrier",
    "CycleStatus",
    "IdempotencyRecord",
    "MatchingCycle",
    "Offer",
    "OfferStatus",
    "Policy",
    "ProgramStatus",
    "RequestStatus",
    "ResourceRequest",
    "Role",
    "Sector",
    "Startup",
    "StartupStatus",
    "SubsidyCommitment",
    "SubsidyProgram",
]
