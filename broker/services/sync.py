"""Carrier syncs: apply a carrier's feed — pulled, pushed or uploaded — to its offers.

The feed itself is written by broker/services/feed_writer.py (how, and which channel owns an
offer, is told there); this module holds the use cases that fetch, receive or take a feed, and
the reports on past syncs.

A push is applied once: the adapter names each verified push (a digest of its signed timestamp
and body), the name is stored with the sync in the same transaction, unique per carrier, and
kept while the signature would still verify; the same push sent again is refused with a 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from adapters.base import (
    AdapterError,
    CarrierAdapter,
    CatalogLimitError,
    ConfigurationError,
    FetchResult,
    PushIdentity,
    UnsupportedFeatureError,
    UploadLimits,
    WebhookSignatureError,
)
from adapters.registry import CarrierAdapters
from adapters.signing import REPLAY_WINDOW_SECONDS
from broker.db import unit_of_work
from broker.errors import DomainError, Forbidden, InvalidInput, NotAuthenticated, NotFound, PayloadTooLarge
from broker.models import (
    Account,
    AuditEntry,
    Carrier,
    CarrierSync,
    Offer,
    QuarantinedRecord,
    Role,
    SyncConflict,
    SyncSource,
    SyncStatus,
)
from broker.services.accounts import STAFF_ROLES, require_role
from broker.services.feed_writer import write_feed


class CarrierUnavailable(DomainError):
    """The carrier is not configured on this server (no settings, or a credential variable unset)."""

    status_code = 503


# ------------------------------------------------------------------------------- use cases


def adapter_for(session: Session, carrier_code: str, adapters: CarrierAdapters) -> CarrierAdapter:
    """The configured adapter of a registered carrier, for `sync_carrier`.

    Ends its read transaction before returning, so no transaction (on SQLite: no write lock)
    is held while the carrier is called. Raises NotFound or ConfigurationError.
    """
    carrier = _carrier(session, carrier_code)
    adapter_name = carrier.adapter
    session.rollback()  # nothing was written: this only ends the read
    return adapters.get(carrier_code, adapter_name)


def sync_carrier(session: Session, carrier_code: str, adapter: CarrierAdapter, now: dt.datetime) -> CarrierSync:
    """Pull the carrier's whole catalogue and apply it; a failed fetch is recorded, changing no offer."""
    try:
        result = adapter.fetch_offers()
    except AdapterError as error:  # includes an open circuit and a missing credential
        return _record_failure(session, carrier_code, SyncSource.pull, now, error)
    return apply_feed(session, carrier_code, SyncSource.pull, result, now, complete=result.complete)


def receive_webhook(
    session: Session,
    carrier_code: str,
    adapters: CarrierAdapters,
    headers: Mapping[str, str],
    body: bytes,
    now: dt.datetime,
) -> CarrierSync:
    """A carrier pushed offers: check its signature (secret from settings), apply them as a delta."""
    carrier = _carrier(session, carrier_code)
    adapter = _configured_adapter(adapters, carrier)
    try:
        secret = adapters.webhook_secret(carrier_code)
        result = adapter.parse_webhook(headers, body, secret, now)
    except WebhookSignatureError as error:
        raise NotAuthenticated(f"Webhook refused: {error.message}.") from None
    except UnsupportedFeatureError:
        raise NotFound(f"Carrier {carrier_code} does not push webhooks.") from None
    except AdapterError as error:
        _record_failure(session, carrier_code, SyncSource.webhook, now, error)
        raise InvalidInput("The webhook body is unreadable; nothing was applied.", {"body": [error.message]}) from None
    if result.push is None:
        # An adapter that names no push: its body's digest, remembered while a signature is fresh.
        valid_until = now + dt.timedelta(seconds=REPLAY_WINDOW_SECONDS)
        result.push = PushIdentity(hashlib.sha256(body).hexdigest(), now, valid_until)
    return apply_feed(session, carrier_code, SyncSource.webhook, result, now, complete=False)


def upload_catalog(
    session: Session,
    actor: Account,
    carrier_code: str,
    adapters: CarrierAdapters,
    content: bytes,
    filename: str,
    now: dt.datetime,
    settings: Mapping[str, Any],
) -> CarrierSync:
    """A carrier uploads its catalog file; bad rows are quarantined, good ones upserted, none withdrawn.

    A file over the upload limits in `settings` (BROKER_UPLOAD_*: what it unpacks to, its
    compression, its rows) is refused whole before any row is parsed: 413 for
    a size, 422 for the rows; the refusal is recorded as a failed sync.
    """
    result = _parsed_upload(session, actor, carrier_code, adapters, content, filename, now, settings, record=True)
    # An uploaded file may be old or a part of the catalogue: it never withdraws anything.
    return apply_feed(session, carrier_code, SyncSource.upload, result, now, complete=False)


@dataclass(frozen=True)
class PreviewedRow:
    """A row the upload would quarantine: where it is in the file, its id if readable, and why."""

    location: str
    external_id: str | None
    reason: str


@dataclass(frozen=True)
class PreviewedChange:
    """An offer the upload would add ("new"), change ("update"), put back on the market
    ("republish") or withdraw ("withdraw"), with its quantity before (None if new) and after."""

    external_id: str
    change: str
    kind: str
    before: Decimal | None
    after: Decimal | None


PREVIEW_LINES = 200  # the changes listed in a preview (all are counted)


@dataclass(frozen=True)
class CatalogPreview:
    """What uploading a catalog file would change, counted as the upload would count it."""

    new: int
    changed: int
    unchanged: int
    withdrawn: int
    conflicts: int
    quarantined: list[PreviewedRow]
    encoding: str | None
    changes: list[PreviewedChange] = field(default_factory=list)


def preview_catalog(
    session: Session,
    actor: Account,
    carrier_code: str,
    adapters: CarrierAdapters,
    content: bytes,
    filename: str,
    now: dt.datetime,
    settings: Mapping[str, Any],
) -> CatalogPreview:
    """What `upload_catalog` would do with this file, keeping nothing: the same parse and the same
    feed writer, in a transaction that is rolled back (a refused file is not recorded either)."""
    result = _parsed_upload(session, actor, carrier_code, adapters, content, filename, now, settings, record=False)
    try:
        carrier = _carrier(session, carrier_code, for_update=True)  # other syncs of the carrier wait
        last_offer = session.scalar(sa.select(sa.func.max(Offer.id))) or 0
        last_entry = session.scalar(sa.select(sa.func.max(AuditEntry.id))) or 0
        sync = write_feed(session, carrier, SyncSource.upload, result, now, complete=False)
        # What it wrote, read back before the rollback: the offers it made, and the audit rows of
        # the ones it changed (the feed writer audits each change of an existing offer).
        changes = [
            PreviewedChange(external_id, "new", kind, None, quantity)
            for external_id, kind, quantity in session.execute(
                sa.select(Offer.external_id, Offer.kind, Offer.quantity)
                .where(Offer.carrier_id == carrier.id, Offer.id > last_offer).order_by(Offer.id).limit(PREVIEW_LINES)
            )
        ]
        changes += [
            PreviewedChange(external_id, action.removeprefix("sync_"), kind, _quantity(before), _quantity(after))
            for external_id, kind, action, before, after in session.execute(
                sa.select(Offer.external_id, Offer.kind, AuditEntry.action, AuditEntry.before, AuditEntry.after)
                .join(Offer, Offer.id == AuditEntry.entity_id)
                .where(AuditEntry.id > last_entry, AuditEntry.entity_type == Offer.__tablename__,
                       AuditEntry.action.like("sync_%"), Offer.carrier_id == carrier.id)
                .order_by(AuditEntry.id).limit(PREVIEW_LINES)
            )
        ]
        quarantined = [
            PreviewedRow(record.location, record.external_id, record.reason)
            for record in session.scalars(
                sa.select(QuarantinedRecord).where(QuarantinedRecord.sync_id == sync.id).order_by(QuarantinedRecord.id)
            )
        ]
        return CatalogPreview(sync.new, sync.changed, sync.unchanged, sync.withdrawn, sync.conflicts, quarantined,
                              result.encoding, changes)
    finally:
        session.rollback()


def _quantity(values: dict[str, Any] | None) -> Decimal | None:
    quantity = (values or {}).get("quantity")
    return Decimal(quantity) if quantity is not None else None


def catalog_template(session: Session, actor: Account, adapters: CarrierAdapters) -> list[list[str]]:
    """The rows of a blank catalog file the carrier's upload reads: its header (with units) and one
    example row. InvalidInput if the carrier's offers come from its API, not from files."""
    require_role(actor, Role.carrier)
    carrier = session.get(Carrier, actor.carrier_id)
    if carrier is None:
        raise NotFound("No such carrier.")
    adapter = _configured_adapter(adapters, carrier)
    try:
        return adapter.catalog_template()
    except UnsupportedFeatureError:
        raise InvalidInput(
            f"Carrier {carrier.code} does not publish catalog files; its offers come from its API.",
            {"file": ["Catalog uploads are not supported for this carrier."]},
        ) from None


@dataclass(frozen=True)
class UploadResult:
    """An upload the carrier made and the rows it quarantined (the first `limit` of them)."""

    sync: CarrierSync
    quarantined: list[QuarantinedRecord]


def upload_result(session: Session, actor: Account, sync_id: int, limit: int = 500) -> UploadResult:
    """One of the carrier's own uploads, as it was applied; another's, or not an upload: NotFound."""
    require_role(actor, Role.carrier)
    found = session.scalar(sa.select(CarrierSync).where(
        CarrierSync.id == sync_id, CarrierSync.carrier_id == actor.carrier_id, CarrierSync.source == SyncSource.upload))
    if found is None:
        raise NotFound("No such upload.")
    quarantined = session.scalars(sa.select(QuarantinedRecord).where(QuarantinedRecord.sync_id == found.id)
                                  .order_by(QuarantinedRecord.id).limit(limit))
    return UploadResult(found, list(quarantined))


def _parsed_upload(
    session: Session,
    actor: Account,
    carrier_code: str,
    adapters: CarrierAdapters,
    content: bytes,
    filename: str,
    now: dt.datetime,
    settings: Mapping[str, Any],
    *,
    record: bool,
) -> FetchResult:
    """The carrier's own uploaded file parsed by its adapter; a refusal raised (and, if `record`,
    recorded as a failed sync)."""
    limits = UploadLimits.from_settings(settings)
    require_role(actor, Role.carrier)
    carrier = _carrier(session, carrier_code)
    if carrier.id != actor.carrier_id:
        raise Forbidden("A carrier uploads only its own catalog.")
    adapter = _configured_adapter(adapters, carrier)
    try:
        return adapter.parse_catalog(content, filename, limits)
    except UnsupportedFeatureError:
        raise InvalidInput(
            f"Carrier {carrier_code} does not publish catalog files; its offers come from its API.",
            {"file": ["Catalog uploads are not supported for this carrier."]},
        ) from None
    except CatalogLimitError as error:
        if record:
            _record_failure(session, carrier_code, SyncSource.upload, now, error)
        refusal = PayloadTooLarge if error.too_large else InvalidInput
        raise refusal(f"The catalog file was refused whole: {error.message}.", {"file": [error.message]}) from None
    except AdapterError as error:
        if record:
            _record_failure(session, carrier_code, SyncSource.upload, now, error)
        raise InvalidInput("The catalog file is unreadable; nothing was applied.", {"file": [error.message]}) from None


def apply_feed(
    session: Session,
    carrier_code: str,
    source: SyncSource,
    result: FetchResult,
    started: dt.datetime,
    *,
    complete: bool,
) -> CarrierSync:
    """Apply a fetched, pushed or uploaded feed to the carrier's offers and record the sync; one commit."""
    with unit_of_work(session):
        # Locking the carrier row makes two syncs of one carrier (a pull and a push) take turns.
        carrier = _carrier(session, carrier_code, for_update=True)
        sync = write_feed(session, carrier, source, result, started, complete=complete)
    return sync


# ------------------------------------------------------------------------------- reports


def _visible_carrier(session: Session, actor: Account, carrier_code: str) -> Carrier:
    if actor.role not in STAFF_ROLES:
        require_role(actor, Role.carrier)
    carrier = _carrier(session, carrier_code)
    if actor.role is Role.carrier and actor.carrier_id != carrier.id:
        raise Forbidden("A carrier sees only its own syncs.")
    return carrier


def list_syncs(session: Session, actor: Account, carrier_code: str) -> sa.Select:
    """A carrier's syncs, newest first: the carrier itself and staff."""
    carrier = _visible_carrier(session, actor, carrier_code)
    return (
        sa.select(CarrierSync)
        .options(selectinload(CarrierSync.carrier))
        .where(CarrierSync.carrier_id == carrier.id)
        .order_by(CarrierSync.started_at.desc(), CarrierSync.id.desc())
    )


def get_sync(session: Session, actor: Account, carrier_code: str, sync_id: int) -> CarrierSync:
    sync = session.scalar(list_syncs(session, actor, carrier_code).where(CarrierSync.id == sync_id))
    if sync is None:
        raise NotFound("No such sync.")
    return sync


def list_quarantined(session: Session, actor: Account, carrier_code: str, sync_id: int) -> sa.Select:
    """The records a sync quarantined, as sent, with reasons."""
    sync = get_sync(session, actor, carrier_code, sync_id)
    return sa.select(QuarantinedRecord).where(QuarantinedRecord.sync_id == sync.id).order_by(QuarantinedRecord.id)


def list_conflicts(session: Session, actor: Account, carrier_code: str, sync_id: int) -> sa.Select:
    """Capacity a sync could not take back because it is promised: staff, and the carrier itself
    (what it asked for and what was kept of its own offers)."""
    sync = get_sync(session, actor, carrier_code, sync_id)
    return sa.select(SyncConflict).where(SyncConflict.sync_id == sync.id).order_by(SyncConflict.id)


@dataclass
class SyncReport:
    """The operator's view (`broker carriers sync-report`): recent syncs and the latest one's details."""

    carrier: Carrier
    syncs: list[CarrierSync]
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    conflicts: list[SyncConflict] = field(default_factory=list)


def sync_report(session: Session, carrier_code: str, limit: int = 10, details: int = 20) -> SyncReport:
    carrier = _carrier(session, carrier_code)
    syncs = list(
        session.scalars(
            sa.select(CarrierSync)
            .where(CarrierSync.carrier_id == carrier.id)
            .order_by(CarrierSync.started_at.desc(), CarrierSync.id.desc())
            .limit(limit)
        )
    )
    report = SyncReport(carrier, syncs)
    if syncs:
        latest = syncs[0].id
        report.quarantined = list(
            session.scalars(
                sa.select(QuarantinedRecord)
                .where(QuarantinedRecord.sync_id == latest)
                .order_by(QuarantinedRecord.id)
                .limit(details)
            )
        )
        report.conflicts = list(
            session.scalars(
                sa.select(SyncConflict).where(SyncConflict.sync_id == latest).order_by(SyncConflict.id).limit(details)
            )
        )
    return report


# ------------------------------------------------------------------------------- the work


def _carrier(session: Session, code: str, *, for_update: bool = False) -> Carrier:
    query = sa.select(Carrier).where(Carrier.code == code)
    if for_update:
        query = query.with_for_update()
    carrier = session.scalar(query)
    if carrier is None:
        raise NotFound(f"No carrier {code!r}.")
    return carrier


def _configured_adapter(adapters: CarrierAdapters, carrier: Carrier) -> CarrierAdapter:
    try:
        return adapters.get(carrier.code, carrier.adapter)
    except ConfigurationError as error:
        raise CarrierUnavailable(f"Carrier {carrier.code} is not configured on this server: {error.message}") from None


def _record_failure(
    session: Session, carrier_code: str, source: SyncSource, started: dt.datetime, error: AdapterError
) -> CarrierSync:
    # The adapter has already scrubbed its credentials out of the message.
    with unit_of_work(session):
        carrier = _carrier(session, carrier_code)
        sync = CarrierSync(carrier_id=carrier.id, source=source, status=SyncStatus.running, complete=False, started_at=started)
        session.add(sync)
        sync.fail(str(error), started)
    return sync
