"""SQLAlchemy 2 typed models. Importing this package registers every table on Base.metadata."""

from collections.abc import Iterator

from broker.models.audit import Audited, AuditEntry
from broker.models.enums import (
    LIGHTHOUSE_SECTORS,
    TURNED_AWAY_STARTUP_STATUSES,
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
from broker.models.declarations import OtherSubsidy, RelatedParty, Relation, SubsidyLevel
from broker.models.evidence import Evidence, EvidenceSide, EvidenceStatus
from broker.models.exports import ExportJob, ExportStatus
from broker.models.ledger import (
    AdjustReason,
    Award,
    AwardStatus,
    Claimant,
    EvidenceType,
    LedgerEntry,
    LedgerKind,
    NoticeState,
    ProgramMode,
    StackGroup,
)
from broker.models.market import Allocation, MatchingCycle, Offer, ResourceRequest
from broker.models.notices import Notice, NoticeItem, NoticeStatus, Objection, ObjectionStatus
from broker.models.outbox import EmailStatus, OutboxEmail
from broker.models.parties import Account, ApiToken, Carrier, Startup
from broker.models.people import (
    AgentScope,
    CompanyRole,
    Invitation,
    PasswordReset,
    Person,
    PersonStatus,
    Side,
    SignInAttempt,
    SignInOutcome,
)
from broker.models.pledges import Pledge, PledgeTerms
from broker.models.policy import IdempotencyRecord, Policy, SubsidyProgram
from broker.models.ratings import AllocationRating
from broker.models.rollups import Rollup, UseRollup
from broker.models.settlement import ClawbackReason, SettlementLine, SettlementStatement, StatementStatus, SubsidyBan
from broker.models.surveys import SurveyCampaign, SurveyDeclaration, SurveyRespondent
from broker.models.sync import (
    CarrierSync,
    ConflictKind,
    PushReceipt,
    QuarantinedRecord,
    SyncConflict,
    SyncSource,
    SyncStatus,
)
from broker.models.workflow import (
    Appeal,
    AppealMessage,
    AppealSide,
    AppealStatus,
    DeliveryStatus,
    Event,
    JobRun,
    UsageReport,
    WebhookDelivery,
    WebhookSubscription,
)


def _audited_tables(cls: type) -> Iterator[str]:
    for subclass in cls.__subclasses__():
        if "__tablename__" in vars(subclass):
            yield subclass.__tablename__
        yield from _audited_tables(subclass)


# The audit log's entity_type values: the table of every audited model, read from the models.
AUDITED_ENTITY_TYPES: tuple[str, ...] = tuple(sorted(set(_audited_tables(Audited))))

__all__ = [
    "AllocationRating",
    "Rollup",
    "UseRollup",
    "Pledge",
    "PledgeTerms",
    "AgentScope",
    "CompanyRole",
    "EmailStatus",
    "Invitation",
    "OutboxEmail",
    "PasswordReset",
    "Person",
    "PersonStatus",
    "Side",
    "SignInAttempt",
    "SignInOutcome",
    "OtherSubsidy",
    "RelatedParty",
    "Relation",
    "SubsidyLevel",
    "AUDITED_ENTITY_TYPES",
    "AdjustReason",
    "Award",
    "AwardStatus",
    "Claimant",
    "Evidence",
    "ExportJob",
    "ExportStatus",
    "EvidenceSide",
    "EvidenceStatus",
    "EvidenceType",
    "LedgerEntry",
    "LedgerKind",
    "NoticeState",
    "Notice",
    "NoticeItem",
    "NoticeStatus",
    "Objection",
    "ObjectionStatus",
    "ProgramMode",
    "StackGroup",
    "ClawbackReason",
    "SettlementLine",
    "SettlementStatement",
    "StatementStatus",
    "SubsidyBan",
    "SurveyCampaign",
    "SurveyDeclaration",
    "SurveyRespondent",
    "Appeal",
    "AppealMessage",
    "AppealSide",
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
    "OfferChannel",
    "OfferStatus",
    "Policy",
    "PushReceipt",
    "QuarantinedRecord",
    "ProgramStatus",
    "RequestStatus",
    "ResourceRequest",
    "Role",
    "Sector",
    "Startup",
    "StartupStatus",
    "SubsidyProgram",
    "SyncConflict",
    "SyncSource",
    "SyncStatus",
    "WithdrawnBy",
]
