"""Carrier syncs: apply a carrier's feed — pulled, pushed or uploaded — to its offers.

A sync is one transaction. Offers are upserted in chunks, keyed by (carrier, external id),
with one INSERT … ON CONFLICT DO UPDATE per chunk; rows identical to the feed are left
alone, so a second run of the same feed writes nothing but its sync record. Capacity already
promised is never taken back: a shrink or a withdrawal stops at `promised`, in SQL, against
the row as it is when the statement runs (so a promise made concurrently still counts), and
every such stop is recorded as a conflict for staff. Offers missing from a feed are withdrawn
only when the feed is the carrier's whole catalogue (a pull); pushes and uploads are partial.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from adapters.base import (
    AdapterError,
    CarrierAdapter,
    ConfigurationError,
    FetchResult,
    OfferRecord,
    RejectedRecord,
    UnsupportedFeatureError,
    WebhookSignatureError,
)
from broker.db import utcnow
from broker.errors import DomainError, Forbidden, InvalidInput, NotAuthenticated, NotFound
from broker.models import (
    Account,
    AuditEntry,
    Carrier,
    CarrierSync,
    ConflictKind,
    Offer,
    OfferStatus,
    QuarantinedRecord,
    Role,
    SyncConflict,
    SyncSource,
    SyncStatus,
)
from broker.services.accounts import STAFF_ROLES, require_role

CHUNK_ROWS = 1000  # rows per upsert statement: ~14 parameters each, far under both backends' limits
MAX_EXTERNAL_ID = 128  # offers.external_id; adapters accept up to 200
_COMPARED = ("region", "attributes", "window_start", "window_end", "list_price", "unit_price")


class CarrierUnavailable(DomainError):
    """The carrier is not configured on this server (no settings, or a credential variable unset)."""

    status_code = 503


class CarrierAdapters:
    """The process's adapter instances, one per carrier code, built on first use from settings.

    An adapter owns its carrier's circuit breaker and connection pool, so it is kept for the
    life of the process; it is rebuilt only if its carrier's settings object is replaced.
    """

    def __init__(self, registry: Any, carriers: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
        self.registry = registry
        self.carriers = carriers  # config.CarrierSettings by code (the app's config mapping, not a copy)
        self._environ = environ
        self._lock = threading.Lock()
        self._built: dict[str, tuple[Any, str, CarrierAdapter]] = {}

    def settings(self, code: str) -> Any:
        try:
            return self.carriers[code]
        except KeyError:
            configured = ", ".join(sorted(self.carriers)) or "none"
            raise ConfigurationError(
                f"carrier {code!r} has no settings (BROKER_CARRIERS_FILE); configured carriers: {configured}",
                carrier=code,
            ) from None

    def get(self, code: str, adapter_name: str) -> CarrierAdapter:
        """The adapter for carrier `code`; ConfigurationError if it can't be built."""
        settings = self.settings(code)
        with self._lock:
            cached = self._built.get(code)
            if cached is not None and cached[0] is settings and cached[1] == adapter_name:
                return cached[2]
            kwargs = {} if self._environ is None else {"environ": self._environ}
            adapter = self.registry.create(adapter_name, settings.adapter, **kwargs)
            self._built[code] = (settings, adapter_name, adapter)
            return adapter

    def webhook_secret(self, code: str) -> str:
        """The carrier's webhook secret, read from the variable its settings name ("" if none)."""
        import os

        variable = self.settings(code).webhook_secret_variable
        environ = os.environ if self._environ is None else self._environ
        return environ.get(variable, "") if variable else ""


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


def sync_carrier(
    session: Session, carrier_code: str, adapter: CarrierAdapter, now: dt.datetime | None = None
) -> CarrierSync:
    """Pull the carrier's whole catalogue and apply it; a failed fetch is recorded, changing no offer."""
    started = now or utcnow()
    try:
        result = adapter.fetch_offers()
    except AdapterError as error:  # includes an open circuit and a missing credential
        return _record_failure(session, carrier_code, SyncSource.pull, started, error)
    return apply_feed(session, carrier_code, SyncSource.pull, result, started, complete=result.complete)


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
    return apply_feed(session, carrier_code, SyncSource.webhook, result, now, complete=False)


def upload_catalog(
    session: Session,
    actor: Account,
    carrier_code: str,
    adapters: CarrierAdapters,
    content: bytes,
    filename: str,
    now: dt.datetime,
) -> CarrierSync:
    """A carrier uploads its catalog file; bad rows are quarantined, good ones upserted, none withdrawn."""
    require_role(actor, Role.carrier)
    carrier = _carrier(session, carrier_code)
    if carrier.id != actor.carrier_id:
        raise Forbidden("A carrier uploads only its own catalog.")
    adapter = _configured_adapter(adapters, carrier)
    try:
        result = adapter.parse_catalog(content, filename)
    except UnsupportedFeatureError:
        raise InvalidInput(
            f"Carrier {carrier_code} does not publish catalog files; its offers come from its API.",
            {"file": ["Catalog uploads are not supported for this carrier."]},
        ) from None
    except AdapterError as error:
        _record_failure(session, carrier_code, SyncSource.upload, now, error)
        raise InvalidInput("The catalog file is unreadable; nothing was applied.", {"file": [error.message]}) from None
    # An uploaded file may be old or a part of the catalogue: it never withdraws anything.
    return apply_feed(session, carrier_code, SyncSource.upload, result, now, complete=False)


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
    try:
        sync = _apply(session, carrier_code, source, result, started, complete)
        session.commit()
    except BaseException:
        session.rollback()
        raise
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
    """Capacity a sync could not take back because it is promised: staff only."""
    require_role(actor, *STAFF_ROLES)
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


def _finish_time(started: dt.datetime) -> dt.datetime:
    return max(utcnow(), started)


def _record_failure(
    session: Session, carrier_code: str, source: SyncSource, started: dt.datetime, error: AdapterError
) -> CarrierSync:
    # The adapter has already scrubbed its credentials out of the message.
    try:
        carrier = _carrier(session, carrier_code)
        sync = CarrierSync(carrier_id=carrier.id, source=source, status=SyncStatus.running, complete=False, started_at=started)
        session.add(sync)
        sync.fail(str(error), _finish_time(started))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return sync


@dataclass
class _Plan:
    upserts: list[dict[str, Any]] = field(default_factory=list)
    audits: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    quarantine: list[RejectedRecord] = field(default_factory=list)
    unchanged: int = 0
    new: int = 0
    changed: int = 0


def _apply(
    session: Session, carrier_code: str, source: SyncSource, result: FetchResult, started: dt.datetime, complete: bool
) -> CarrierSync:
    # Locking the carrier row makes two syncs of one carrier (a pull and a push) take turns.
    carrier = _carrier(session, carrier_code, for_update=True)
    sync = CarrierSync(carrier_id=carrier.id, source=source, status=SyncStatus.running, complete=complete, started_at=started)
    session.add(sync)
    session.flush()
    now = _finish_time(started)
    table = Offer.__table__

    existing = _existing_offers(session, carrier.id, None if complete else [o.external_id for o in result.offers])
    plan = _plan(carrier.id, result, existing, now)

    conflicts: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    statement = _upsert_statement(session)
    for chunk in _chunks(plan.upserts, CHUNK_ROWS):
        session.execute(statement, chunk)  # an executemany: the driver pipelines or batches it
    # Read back what the upserts made: these rows are locked by this transaction until it
    # commits, so the quantities read are the ones the guarded SET computed.
    requested = {row["external_id"]: row["quantity"] for row in plan.upserts}
    # Only changed rows can hit promises or need an audit entry; created ones are counted.
    for offer_id, external_id, quantity in _read_back(session, carrier.id, list(plan.audits)):
        action, before, after = plan.audits[external_id]
        if quantity > requested[external_id]:
            # The feed shrank the lot below what is promised: it stays at the promises.
            conflicts.append(_conflict(sync, offer_id, external_id, ConflictKind.shrunk, requested[external_id], quantity))
            after = {**after, "quantity": str(quantity)}
        audit_rows.append(_audit(session, now, action, offer_id, before, after, sync.id))

    withdrawn = 0
    if complete:
        seen = result.seen_external_ids
        missing = [row.id for external_id, row in existing.items() if external_id not in seen and row.status == "active"]
        for chunk in _chunks(missing, CHUNK_ROWS):
            statement = (
                sa.update(table)
                .where(table.c.id.in_(chunk), table.c.status == OfferStatus.active)
                # Never below what is promised: evaluated on the row as it is now, under its lock.
                .values(status=OfferStatus.withdrawn, quantity=table.c.promised, updated_at=now)
                .returning(table.c.id, table.c.external_id, table.c.quantity)
            )
            for offer_id, external_id, kept in session.execute(statement):
                withdrawn += 1
                before = {"status": "active", "quantity": str(existing[external_id].quantity)}
                audit_rows.append(
                    _audit(session, now, "withdraw", offer_id, before, {"status": "withdrawn", "quantity": str(kept)}, sync.id)
                )
                if kept > 0:
                    conflicts.append(_conflict(sync, offer_id, external_id, ConflictKind.withdrawn, Decimal(0), kept))

    quarantine_rows = [
        {
            "sync_id": sync.id,
            "external_id": (r.external_id or None) and r.external_id[:200],
            "location": (r.location or "")[:200],
            "reason": r.reason,
            "raw": r.raw,
        }
        for r in [*result.rejected, *plan.quarantine]
    ]
    for table_, rows in (
        (QuarantinedRecord.__table__, quarantine_rows),
        (SyncConflict.__table__, conflicts),
        (AuditEntry.__table__, audit_rows),
    ):
        for chunk in _chunks(rows, CHUNK_ROWS):
            session.execute(sa.insert(table_), chunk)

    sync.succeed(
        {
            "new": plan.new,
            "changed": plan.changed,
            "unchanged": plan.unchanged,
            "withdrawn": withdrawn,
            "quarantined": len(quarantine_rows),
            "conflicts": len(conflicts),
        },
        _finish_time(started),
    )
    return sync


@dataclass(frozen=True)
class _Existing:
    id: int
    kind: str
    divisible: bool
    status: str
    quantity: Decimal
    promised: Decimal
    values: tuple[Any, ...]  # the _COMPARED fields, in order


def _existing_offers(session: Session, carrier_id: int, external_ids: Sequence[str] | None) -> dict[str, _Existing]:
    """The carrier's offers by external id: all of them, or those with the given ids."""
    table = Offer.__table__
    columns = [table.c.external_id, table.c.id, table.c.kind, table.c.divisible, table.c.status,
               table.c.quantity, table.c.promised, *(table.c[name] for name in _COMPARED)]
    query = sa.select(*columns).where(table.c.carrier_id == carrier_id)
    if external_ids is None:
        batches: Iterator[Sequence[str] | None] = iter([None])
    else:
        batches = _chunks(sorted(set(external_ids)), CHUNK_ROWS)
    found: dict[str, _Existing] = {}
    for batch in batches:
        statement = query if batch is None else query.where(table.c.external_id.in_(batch))
        for row in session.execute(statement):
            status = row.status.value if isinstance(row.status, OfferStatus) else row.status
            found[row.external_id] = _Existing(
                row.id, row.kind, row.divisible, status, row.quantity, row.promised, tuple(row[7:])
            )
    return found


def _read_back(session: Session, carrier_id: int, external_ids: list[str]) -> Iterator[Any]:
    """(id, external id, quantity) of the carrier's offers with these ids."""
    table = Offer.__table__
    query = sa.select(table.c.id, table.c.external_id, table.c.quantity).where(table.c.carrier_id == carrier_id)
    for batch in _chunks(external_ids, CHUNK_ROWS):
        yield from session.execute(query.where(table.c.external_id.in_(batch)))


def _plan(carrier_id: int, result: FetchResult, existing: dict[str, _Existing], now: dt.datetime) -> _Plan:
    plan = _Plan()
    taken: set[str] = set()
    for record in result.offers:
        external_id = record.external_id
        if len(external_id) > MAX_EXTERNAL_ID:
            plan.quarantine.append(_rejected(record, f"external id longer than {MAX_EXTERNAL_ID} characters"))
            continue
        if external_id in taken:  # adapters drop duplicates already; this keeps capacity single if one didn't
            plan.quarantine.append(_rejected(record, f"duplicate external id {external_id!r}; kept the first"))
            continue
        taken.add(external_id)
        row = existing.get(external_id)
        values = _offer_values(carrier_id, record, now)
        if row is None:
            plan.new += 1
            # No audit entry per created offer (a first sync creates 100,000): the sync's own
            # row, counts and time record them; every later change to an offer is audited.
            plan.upserts.append(values)
            continue
        if row.kind != record.kind or row.divisible != record.divisible:
            plan.quarantine.append(
                _rejected(record, f"lot {external_id} is a {'divisible' if row.divisible else 'whole'} {row.kind} "
                                  "offer; its kind and divisibility cannot change")
            )
            continue
        # What the row would become: the feed's quantity, but never below what is promised.
        kept = max(record.quantity, row.promised)
        if row.status == "active" and row.quantity == kept and row.values == tuple(values[f] for f in _COMPARED):
            plan.unchanged += 1
            continue
        plan.changed += 1
        plan.upserts.append(values)
        before = {"status": row.status, "quantity": str(row.quantity),
                  **{f: _jsonable(v) for f, v in zip(_COMPARED, row.values)}}
        action = "republish" if row.status != "active" else "update"
        plan.audits[external_id] = (action, before, _audit_values(record))
    return plan


def _offer_values(carrier_id: int, record: OfferRecord, now: dt.datetime) -> dict[str, Any]:
    return {
        "carrier_id": carrier_id,
        "external_id": record.external_id,
        "kind": record.kind,
        "region": record.region,
        "attributes": dict(record.attributes),
        "quantity": record.quantity,
        "promised": Decimal(0),
        "window_start": record.window_start,
        "window_end": record.window_end,
        "list_price": record.list_price,
        "unit_price": record.unit_price,
        "divisible": bool(record.divisible),
        "status": OfferStatus.active,
        "created_at": now,
        "updated_at": now,
    }


def _upsert_statement(session: Session) -> Any:
    """INSERT … ON CONFLICT (carrier_id, external_id) DO UPDATE, in this database's dialect."""
    table = Offer.__table__
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"bulk upsert needs PostgreSQL or SQLite, not {dialect}")
    statement = insert(table)
    excluded = statement.excluded
    # kind and divisibility are the lot's identity and are never changed by a sync.
    updates: dict[str, Any] = {name: excluded[name] for name in (*_COMPARED, "status", "updated_at")}
    # Guarded against the row's current promises, whatever was read before.
    updates["quantity"] = sa.case((excluded.quantity < table.c.promised, table.c.promised), else_=excluded.quantity)
    return statement.on_conflict_do_update(index_elements=[table.c.carrier_id, table.c.external_id], set_=updates)


def _conflict(
    sync: CarrierSync, offer_id: int, external_id: str, kind: ConflictKind, requested: Decimal, kept: Decimal
) -> dict[str, Any]:
    return {
        "sync_id": sync.id,
        "offer_id": offer_id,
        "external_id": external_id,
        "kind": kind,
        "requested_quantity": requested,
        "kept_quantity": kept,
    }


def _audit(
    session: Session,
    now: dt.datetime,
    action: str,
    offer_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    sync_id: int,
) -> dict[str, Any]:
    # Core rows for the audit log: the flush hook never sees bulk statements.
    return {
        "at": now,
        "actor_id": session.info.get("actor_id"),
        "action": f"sync_{action}",
        "entity_type": Offer.__tablename__,
        "entity_id": offer_id,
        "before": before,
        "after": {**after, "sync_id": sync_id},
    }


def _audit_values(record: OfferRecord) -> dict[str, Any]:
    return {
        "status": "active",
        "quantity": str(record.quantity),
        **{name: _jsonable(getattr(record, name)) for name in _COMPARED},
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _rejected(record: OfferRecord, reason: str) -> RejectedRecord:
    raw = {"external_id": record.external_id, "kind": record.kind, "region": record.region,
           "quantity": str(record.quantity)}
    return RejectedRecord(external_id=record.external_id, raw=raw, reason=reason, location="")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
