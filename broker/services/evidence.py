"""Evidence per award: the award's startup or its supplying carrier uploads a piece, staff verify or
reject it, and the award knows whether every piece its program requires is verified.

The bytes go to the evidence store the caller hands in (broker.storage: a folder or an S3 bucket),
content-addressed, so the same file uploaded twice is stored once. Everything about an upload is
checked before a byte is stored: who may, which award, the file's size and what it really is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker import storage
from broker.db import transaction
from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.inputs import text_problem
from broker.models import Account, Allocation, Award, AwardStatus, Role
from broker.models.evidence import MAX_FILE_NAME, Evidence, EvidenceSide, EvidenceStatus
from broker.models.ledger import EvidenceType
from broker.services import accounts, events, ledger


@dataclass(frozen=True)
class Upload:
    """An uploaded file as it came: its bytes, the name and the content type the client gave it."""

    data: bytes
    file_name: str
    declared_type: str = ""


# -- who sees what ----------------------------------------------------------------------------------


def _visible(actor: Account, query: sa.Select) -> sa.Select:
    # The award's own rule (ledger._own): its startup, the carrier that supplied it, staff and admins.
    return ledger._own(actor, query, Award.startup_id, Award.carrier_id)


def _award(session: Session, actor: Account, award_id: int, *, lock: bool = False) -> Award:
    query = _visible(actor, sa.select(Award).where(Award.id == award_id))
    if lock:
        query = query.with_for_update(of=Award).execution_options(populate_existing=True)
    award = session.scalar(query)
    if award is None:
        raise NotFound(f"No award {award_id}.")
    return award


def _side(actor: Account) -> EvidenceSide:
    if actor.role is Role.startup:
        return EvidenceSide.startup
    if actor.role is Role.carrier:
        return EvidenceSide.carrier
    raise Forbidden("Evidence is uploaded by the award's startup or by the carrier that supplied it.")


def _file_name(name: str) -> str:
    """The name to keep and show: its last path part (a browser may send a whole path), checked as text."""
    shown = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    problem = text_problem(shown)
    if problem is None and not shown:
        problem = "The file has no name."
    elif problem is None and len(shown) > MAX_FILE_NAME:
        problem = f"The file's name is {len(shown)} characters long; at most {MAX_FILE_NAME}."
    if problem:
        raise InvalidInput(f"file: {problem}", {"file": [problem]}, location="files")
    return shown


# -- use cases ----------------------------------------------------------------------------------------


@transaction
def upload(
    session: Session, actor: Account, store: storage.EvidenceStore, award_id: int, type_: EvidenceType,
    file: Upload, now: dt.datetime, *, max_bytes: int = storage.DEFAULT_MAX_BYTES,
) -> tuple[Evidence, bool]:
    """The award's startup or supplying carrier uploads one piece of evidence; (the piece, whether it is new).

    The same bytes as a piece of the same type that is pending or verified are that piece again,
    not a second row; after a rejection the same type uploaded again is a new piece."""
    award = _award(session, actor, award_id, lock=True)  # awards → evidence, as in the review
    side = _side(actor)
    if award.status is AwardStatus.clawed_back:
        raise Conflict(f"Award {award.id} was clawed back; it takes no more evidence.")
    name = _file_name(file.file_name)
    content_type = storage.check_file(file.data, name, file.declared_type, max_bytes)
    digest = hashlib.sha256(file.data).hexdigest()
    same = session.scalar(
        sa.select(Evidence).where(
            Evidence.award_id == award.id, Evidence.type == type_, Evidence.sha256 == digest,
            Evidence.status != EvidenceStatus.rejected,
        ).order_by(Evidence.id).limit(1)
    )
    if same is not None:
        return same, False
    # Stored before the row is written: if the transaction then fails, an unreferenced object is
    # left, harmless (content-addressed, reused by the next upload of the same bytes); the other
    # way round a committed row could name bytes that were never stored.
    stored = store.put(file.data, content_type)
    evidence = Evidence(
        award_id=award.id, type=type_, storage_key=stored.key, sha256=stored.sha256, size=stored.size,
        content_type=stored.content_type, file_name=name, uploaded_by_id=actor.id, side=side, uploaded_at=now,
    )
    evidence.audit_as("upload")
    session.add(evidence)
    session.flush()
    return evidence, True


def list_evidence(session: Session, actor: Account, award_id: int) -> sa.Select:
    """An award's pieces, oldest first (rejected ones too), for whoever may see the award."""
    award = _award(session, actor, award_id)
    return sa.select(Evidence).where(Evidence.award_id == award.id).order_by(Evidence.id)


def get_evidence(session: Session, actor: Account, evidence_id: int) -> Evidence:
    """One piece, for whoever may see its award; 404 for everyone else."""
    evidence = session.scalar(
        _visible(actor, sa.select(Evidence).join(Award, Evidence.award_id == Award.id).where(Evidence.id == evidence_id))
    )
    if evidence is None:
        raise NotFound(f"No evidence {evidence_id}.")
    return evidence


def read_file(session: Session, actor: Account, store: storage.EvidenceStore, evidence_id: int) -> tuple[Evidence, bytes]:
    """A piece and its bytes (checked against their SHA-256 by the store), for whoever may see its award."""
    evidence = get_evidence(session, actor, evidence_id)
    return evidence, store.get(evidence.storage_key)


@transaction
def verify(session: Session, actor: Account, evidence_id: int, now: dt.datetime) -> Evidence:
    """Staff accept a pending piece; the award's evidence_complete is worked out again."""
    accounts.require_role(actor, Role.staff, Role.admin)
    evidence, award = _lock_for_review(session, evidence_id)
    evidence.verify(actor.id, now)
    _reviewed(session, award, evidence, now)
    return evidence


@transaction
def reject(session: Session, actor: Account, evidence_id: int, reason: str, now: dt.datetime) -> Evidence:
    """Staff refuse a pending piece with a reason; the uploader's side may upload that type again."""
    accounts.require_role(actor, Role.staff, Role.admin)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("A rejection needs a reason.", {"reason": ["Say why the evidence is rejected."]})
    evidence, award = _lock_for_review(session, evidence_id)
    evidence.reject(actor.id, now, reason)
    _reviewed(session, award, evidence, now)
    return evidence


def _lock_for_review(session: Session, evidence_id: int) -> tuple[Evidence, Award]:
    # The lock order: the award, then its evidence (an upload takes the award's lock too).
    award_id = session.scalar(sa.select(Evidence.award_id).where(Evidence.id == evidence_id))
    if award_id is None:
        raise NotFound(f"No evidence {evidence_id}.")
    award = session.scalar(
        sa.select(Award).where(Award.id == award_id).with_for_update(of=Award).execution_options(populate_existing=True)
    )
    evidence = session.scalar(
        sa.select(Evidence).where(Evidence.id == evidence_id).with_for_update(of=Evidence)
        .execution_options(populate_existing=True)
    )
    assert award is not None and evidence is not None  # rows are never deleted
    return evidence, award


def _reviewed(session: Session, award: Award, evidence: Evidence, now: dt.datetime) -> None:
    # Every review ends here, so no caller can forget the award's flag or the startup's event.
    recompute_evidence_complete(session, award)
    allocation = session.get(Allocation, award.allocation_id)
    events.record(
        session, f"evidence.{evidence.status.value}", allocation, award.startup_id,
        award.carrier_id if evidence.side is EvidenceSide.carrier else None, now,
        evidence_id=evidence.id, award_id=award.id, evidence_type=evidence.type.value,
        file_name=evidence.file_name, reason=evidence.reason, evidence_complete=award.evidence_complete,
    )


def recompute_evidence_complete(session: Session, award: Award) -> bool:
    """Set and return whether every type the award's program requires has a verified piece
    (True when it requires none). The caller holds the award's lock."""
    session.flush()
    verified = set(session.scalars(
        sa.select(Evidence.type).where(Evidence.award_id == award.id, Evidence.status == EvidenceStatus.verified)
    ))
    complete = {EvidenceType(t) for t in award.program.evidence_required} <= verified
    if award.evidence_complete != complete:
        award.audit_as("evidence_complete" if complete else "evidence_incomplete")
        award.evidence_complete = complete
    return complete

