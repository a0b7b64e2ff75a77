"""The set-based feed writer: a carrier's feed, as one sync, written to its offers.

The one entry point is `write_feed`; the use cases that call it are in broker/services/sync.py.

A sync is one transaction. The feed is staged in a temporary table (COPY on PostgreSQL), sorted
into new, changed and unchanged rows by one set-based statement, and upserted keyed by
(carrier, external id) with INSERT … SELECT … ON CONFLICT DO UPDATE; rows identical to the
feed are left alone, so a second run of the same feed writes nothing but its sync record. Capacity already
promised is never taken back: a shrink or a withdrawal stops at `promised`, in SQL, against
the row as it is when the statement runs (so a promise made concurrently still counts), and
every such stop is recorded as a conflict for staff. Offers missing from a feed are withdrawn
only when the feed is the carrier's whole catalogue (a pull); pushes and uploads are partial.

Which channel owns an offer. A carrier publishes through four channels: the broker's pull of
its catalogue (pull), a signed push (webhook), `POST /api/v1/offers` (api) and a catalog upload
(upload). An offer remembers the channel that last published it: a feed or upsert that names
it makes it that channel's, even if nothing else changed (a carrier's own withdrawal aside,
below). Then:

- a complete pull withdraws only the missing offers whose channel is pull (`withdrawn_by` sync),
  and a later pull that lists one again puts it back; what came through the API, an upload or a
  push stays on the market until the carrier withdraws it, or until a pull lists it (it is then
  the pull's, and leaves with the pull);
- an offer the carrier withdrew itself (`POST /offers/{id}/withdraw`, `withdrawn_by` carrier)
  stays withdrawn when a pull or a push lists it (counted unchanged: both come from the
  carrier's catalogue systems, which may not have caught up with the withdrawal); only the
  carrier publishing it again through the API or an upload puts it back.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from adapters.base import FetchResult, OfferRecord, PushIdentity, RejectedRecord
from broker.errors import Conflict
from broker.models import (
    AuditEntry,
    Carrier,
    CarrierSync,
    ConflictKind,
    Offer,
    OfferChannel,
    OfferStatus,
    PushReceipt,
    QuarantinedRecord,
    SyncConflict,
    SyncSource,
    SyncStatus,
    WithdrawnBy,
)
from broker.models.audit import actor_columns
from broker.publishing import PUBLISHED_FIELDS, kept_quantity_sql, same_identity_sql
from broker.uniques import duplicate

log = logging.getLogger(__name__)

CHUNK_ROWS = 1000  # rows per withdrawal or log statement: far under both backends' parameter limits
MAX_EXTERNAL_ID = Offer.__table__.c.external_id.type.length  # the column's; adapters accept up to 200
# The published fields compared one by one; the quantity is compared, and set, guarded by the promises.
_COMPARED = tuple(name for name in PUBLISHED_FIELDS if name != "quantity")


# ------------------------------------------------------------------------------- the work, set-based
#
# The feed is staged in a temporary table (COPY on PostgreSQL, one executemany on SQLite), and
# everything else is a handful of set-based statements against it, the same on both backends:
#
#   1. _plan: one INSERT … SELECT joins the staged feed to the carrier's offers and writes to a
#      second temporary table every row that is new, changed, or changes a lot's identity, with
#      the offer's values before the sync (for the audit log); rows identical to the offer are
#      left out, so an unchanged sync plans nothing;
#   2. new and changed rows are upserted with INSERT … SELECT … ON CONFLICT DO UPDATE, the
#      quantity guarded against the row's promises as the statement finds them; the changed
#      ones come back through RETURNING, so a shrink stopped at the promises is seen;
#   3. on a complete feed, the active offers of the feed's own channel missing from it (found
#      before the upserts, and only looked for when the feed names fewer of them than there are)
#      are withdrawn, down to what is promised, by id.
#
# Both temporary tables are dropped before the sync commits (and ON COMMIT DROP on PostgreSQL),
# so they also work inside a savepoint, where a "commit" is only a RELEASE.

_FEED_TABLE = "sync_feed"
_PLAN_TABLE = "sync_plan"
_FEED_COLUMNS = ("ord", "external_id", "kind", "region", "attributes", "quantity", "window_start", "window_end",
                 "list_price", "unit_price", "divisible")
_FEED_DDL = (
    f"ord INTEGER PRIMARY KEY, external_id VARCHAR({MAX_EXTERNAL_ID}) NOT NULL, kind VARCHAR(16) NOT NULL, "
    "region VARCHAR(64) NOT NULL, attributes TEXT NOT NULL, quantity BIGINT NOT NULL, window_start DATE NOT NULL, "
    "window_end DATE NOT NULL, list_price BIGINT NOT NULL, unit_price BIGINT NOT NULL, divisible BOOLEAN NOT NULL"
)
_NEW, _CHANGED, _IDENTITY, _KEPT = "new", "changed", "identity", "kept"
# The channels through which a carrier puts back an offer it withdrew itself (see the module docstring).
_REPUBLISHES = frozenset({OfferChannel.api, OfferChannel.upload})
_SQLITE_JSON_EQUAL = "broker_sync_json_equal"
# What COPY's text format escapes in a value (a NUL can't be in PostgreSQL text at all).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

_ABOUT_PLAN = sa.text(
    f"SELECT p.ord, p.action, p.offer_id, p.old_kind, p.old_divisible, p.old_status, p.old_channel, "
    f"p.old_withdrawn_by, p.old_quantity, p.old_region, p.old_attributes, p.old_window_start, p.old_window_end, "
    f"p.old_list_price, p.old_unit_price FROM {_PLAN_TABLE} p WHERE p.action NOT IN (:new, :kept) ORDER BY p.ord"
).columns(
    ord=sa.Integer, action=sa.String, offer_id=sa.Integer, old_kind=sa.String, old_divisible=sa.Boolean,
    old_status=sa.String, old_channel=sa.String, old_withdrawn_by=sa.String,
    old_quantity=Offer.__table__.c.quantity.type, old_region=sa.String,
    old_attributes=sa.JSON, old_window_start=sa.Date, old_window_end=sa.Date,
    old_list_price=Offer.__table__.c.list_price.type, old_unit_price=Offer.__table__.c.unit_price.type,
)


@dataclass
class _Changed:
    """A feed row that changes an existing offer (or tries to change its identity)."""

    ord: int
    action: str
    offer_id: int
    kind: str
    divisible: bool
    status: str
    channel: str
    withdrawn_by: str | None
    quantity: Decimal
    values: tuple[Any, ...]  # the _COMPARED fields before the sync, in order


@dataclass
class _Staged:
    """The feed as staged: its records by position (`ord`), and those refused before staging."""

    records: dict[int, OfferRecord] = field(default_factory=dict)
    quarantine: list[tuple[int, RejectedRecord]] = field(default_factory=list)


@dataclass
class _Plan:
    new: int = 0
    unchanged: int = 0
    changed: list[_Changed] = field(default_factory=list)  # by ord
    quarantine: list[tuple[int, RejectedRecord]] = field(default_factory=list)  # (ord, record)
    matched_active: int = 0  # active offers of the feed's channel that the feed names


def write_feed(
    session: Session, carrier: Carrier, source: SyncSource, result: FetchResult, started: dt.datetime, *, complete: bool
) -> CarrierSync:
    """Write a feed to the carrier's offers as one sync, in the caller's transaction (the caller
    commits); `carrier` is locked by the caller. Refuses a replayed push (Conflict)."""
    push = result.push if source is SyncSource.webhook else None
    if push is not None:
        _refuse_a_replay(session, carrier, push, started)
    sync = CarrierSync(carrier_id=carrier.id, source=source, status=SyncStatus.running, complete=complete,
                       started_at=started, encoding=result.encoding)
    session.add(sync)
    session.flush()
    if push is not None:
        # In the transaction that applies the push; a replay that raced past the check above
        # meets the unique constraint here (409).
        session.add(PushReceipt(carrier_id=carrier.id, push_id=push.id, sync_id=sync.id, signed_at=push.signed_at,
                                valid_until=push.valid_until))
        session.flush()
    now = started  # the use case's one "now": the offers' updated_at and the sync's finished_at
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise RuntimeError(f"bulk sync needs PostgreSQL or SQLite, not {dialect}")

    channel = OfferChannel(source.value)
    staged = _stage(connection, result)
    plan = _plan(session, carrier.id, staged, channel)
    # Offers to withdraw are found before the upserts, which only touch offers the feed names.
    missing = _missing_offers(connection, carrier.id, result, plan, channel) if complete else {}

    conflicts: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    parameters = {"carrier_id": carrier.id, "channel": channel.value, "now": now}
    if plan.new:
        connection.execute(_upsert(dialect, channel, returning=False), {**parameters, "action": _NEW})
    changed = 0
    if plan.changed:
        # These rows are locked by this transaction until it commits, so the quantities returned
        # are the ones the guarded SET computed against the promises as they are now.
        updated = {
            external_id: (offer_id, quantity)
            for offer_id, external_id, quantity in connection.execute(
                _upsert(dialect, channel, returning=True), {**parameters, "action": _CHANGED}
            )
        }
        for change in plan.changed:
            record = staged.records[change.ord]
            if record.external_id not in updated:
                plan.unchanged += 1  # the carrier withdrew it since the plan was read: it stays withdrawn
                continue
            changed += 1
            offer_id, quantity = updated[record.external_id]
            after = {**_audit_values(record), "channel": channel.value}
            if quantity > record.quantity:
                # The feed shrank the lot below what is promised: it stays at the promises.
                conflicts.append(_conflict(sync, offer_id, record.external_id, ConflictKind.shrunk, record.quantity, quantity))
                after = {**after, "quantity": str(quantity)}
            before = {"status": change.status, "channel": change.channel, "quantity": str(change.quantity),
                      **{f: _jsonable(v) for f, v in zip(_COMPARED, change.values)}}
            if change.withdrawn_by is not None:
                before["withdrawn_by"] = change.withdrawn_by
            action = "republish" if change.status != "active" else "update"
            audit_rows.append(_audit(session, now, action, offer_id, before, after, sync.id))

    withdrawn = 0
    if missing:
        table = Offer.__table__
        for chunk in _chunks(list(missing), CHUNK_ROWS):
            statement = (
                sa.update(table)
                # Still the feed's own and on the market as the row is now: a carrier that published
                # or withdrew it meanwhile keeps it.
                .where(table.c.id.in_(chunk), table.c.status == OfferStatus.active, table.c.channel == channel)
                # Never below what is promised: evaluated on the row as it is now, under its lock.
                .values(status=OfferStatus.withdrawn, withdrawn_by=WithdrawnBy.sync, quantity=table.c.promised,
                        updated_at=now)
                .returning(table.c.id, table.c.external_id, table.c.quantity)
            )
            for offer_id, external_id, kept_quantity in sorted(connection.execute(statement)):
                withdrawn += 1
                before = {"status": "active", "quantity": str(missing[offer_id].quantity)}
                audit_rows.append(
                    _audit(session, now, "withdraw", offer_id, before,
                           {"status": "withdrawn", "withdrawn_by": "sync", "quantity": str(kept_quantity)}, sync.id)
                )
                if kept_quantity > 0:
                    conflicts.append(_conflict(sync, offer_id, external_id, ConflictKind.withdrawn, Decimal(0), kept_quantity))

    for name in (_PLAN_TABLE, _FEED_TABLE):
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")

    refused = [r for _, r in sorted([*staged.quarantine, *plan.quarantine], key=lambda item: item[0])]
    quarantine_rows = [
        {
            "sync_id": sync.id,
            "external_id": (r.external_id or None) and r.external_id[:200],
            "location": (r.location or "")[:200],
            "reason": r.reason,
            "raw": r.raw,
        }
        for r in [*result.rejected, *refused]
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
            "changed": changed,
            "unchanged": plan.unchanged,
            "withdrawn": withdrawn,
            "quarantined": len(quarantine_rows),
            "conflicts": len(conflicts),
        },
        now,
    )
    return sync


def _refuse_a_replay(session: Session, carrier: Carrier, push: PushIdentity, now: dt.datetime) -> None:
    """Forget this carrier's pushes whose signatures went stale, then refuse `push` if it was applied."""
    session.execute(sa.delete(PushReceipt).where(PushReceipt.carrier_id == carrier.id, PushReceipt.valid_until < now))
    applied = session.scalar(
        sa.select(PushReceipt.sync_id).where(PushReceipt.carrier_id == carrier.id, PushReceipt.push_id == push.id)
    )
    if applied is not None:
        log.warning("Refused a replayed push from carrier %s (applied as sync %s)", carrier.code, applied)
        refusal = duplicate("uq_push_receipts_carrier_id_push_id")
        raise Conflict(f"{refusal.message} It was applied as sync {applied}; nothing was changed.", refusal.errors)


def _missing_offers(
    connection: sa.Connection, carrier_id: int, result: FetchResult, plan: _Plan, channel: OfferChannel
) -> dict[int, Any]:
    """The carrier's active offers from the feed's channel that a complete feed does not name:
    (id, external id, quantity) by id. What the carrier published another way is not the feed's."""
    table = Offer.__table__
    active = sa.and_(table.c.carrier_id == carrier_id, table.c.status == OfferStatus.active, table.c.channel == channel)
    if connection.scalar(sa.select(sa.func.count()).select_from(table).where(active)) == plan.matched_active:
        return {}  # the feed names every one of them: the usual case, without an anti-join
    feed = sa.table(_FEED_TABLE, sa.column("external_id"))
    candidates = (
        sa.select(table.c.id, table.c.external_id, table.c.quantity)
        .where(active, ~sa.exists().where(feed.c.external_id == table.c.external_id))
        .order_by(table.c.id)
    )
    # Ids refused before staging (unreadable, overlong, duplicate) still count as seen.
    seen = result.seen_external_ids
    return {row.id: row for row in connection.execute(candidates) if row.external_id not in seen}


def _stage(connection: sa.Connection, result: FetchResult) -> _Staged:
    """Load the feed's importable records into a temporary table, one row each, keyed by `ord`."""
    dialect = connection.dialect
    postgres = dialect.name == "postgresql"
    for name in (_PLAN_TABLE, _FEED_TABLE):
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    # Unique external ids: the index serves the joins to offers, whichever way a planner
    # without statistics on a temporary table turns them.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_FEED_TABLE} ({_FEED_DDL}, UNIQUE (external_id))"
        + (" ON COMMIT DROP" if postgres else "")
    )
    # The values exactly as the offers table stores them: scaled integers and the JSON text that
    # SQLAlchemy's JSON type writes; dates as ISO text and booleans as 0/1, which SQLite stores
    # and PostgreSQL's COPY reads.
    columns = Offer.__table__.c
    scale_quantity = columns.quantity.type.process_bind_param
    scale_price = columns.list_price.type.process_bind_param
    serialize = dialect._json_serializer or json.dumps  # type: ignore[attr-defined]
    texts: dict[tuple[Any, ...], str] = {}  # a feed repeats a few attribute sets many times

    def to_json(attributes: Mapping[str, Any]) -> str:
        key = tuple(attributes.items())
        text = texts.get(key)
        if text is None:
            text = texts[key] = serialize(dict(attributes))
        return text

    staged = _Staged()
    rows: list[tuple[Any, ...]] = []
    taken: set[str] = set()
    for ord_, record in enumerate(result.offers):
        external_id = record.external_id
        if len(external_id) > MAX_EXTERNAL_ID:
            staged.quarantine.append((ord_, _rejected(record, f"external id longer than {MAX_EXTERNAL_ID} characters")))
            continue
        if external_id in taken:  # adapters drop duplicates already; this keeps capacity single if one didn't
            staged.quarantine.append((ord_, _rejected(record, f"duplicate external id {external_id!r}; kept the first")))
            continue
        taken.add(external_id)
        staged.records[ord_] = record
        start, end = record.window_start, record.window_end
        rows.append((
            ord_, external_id, record.kind, record.region, to_json(record.attributes),
            scale_quantity(record.quantity, dialect),
            start.isoformat(), end.isoformat(),
            scale_price(record.list_price, dialect), scale_price(record.unit_price, dialect),
            int(bool(record.divisible)),
        ))
    if postgres:
        driver = connection.connection.driver_connection
        statement = f"COPY {_FEED_TABLE} ({', '.join(_FEED_COLUMNS)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            # COPY's text format, written by hand: several times faster than write_row here.
            for chunk in _chunks(rows, CHUNK_ROWS):
                copy.write("".join(
                    f"{ord_}\t{external_id.translate(_COPY_ESCAPES)}\t{kind.translate(_COPY_ESCAPES)}\t"
                    f"{region.translate(_COPY_ESCAPES)}\t{attributes.translate(_COPY_ESCAPES)}\t{quantity}\t"
                    f"{start}\t{end}\t{list_price}\t{unit_price}\t{divisible}\n"
                    for ord_, external_id, kind, region, attributes, quantity, start, end, list_price, unit_price,
                    divisible in chunk
                ))
    else:
        if rows:
            placeholders = ", ".join("?" for _ in _FEED_COLUMNS)
            connection.exec_driver_sql(f"INSERT INTO {_FEED_TABLE} VALUES ({placeholders})", rows)
    return staged


def _plan(session: Session, carrier_id: int, staged: _Staged, channel: OfferChannel) -> _Plan:
    """Sort the staged rows into new, changed, unchanged, kept and identity changes, in one statement.

    An offer another channel published counts as changed (the feed takes it over); one the
    carrier withdrew is kept withdrawn unless the feed may republish it (_REPUBLISHES).
    Reads the offers as they are now; the upserts that follow guard quantities against the
    promises, and carrier withdrawals, as they are when they run.
    """
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        same_attributes = "CAST(o.attributes AS jsonb) = CAST(f.attributes AS jsonb)"
    else:
        # Equal text is equal JSON; otherwise compare the parsed values, as dicts compare.
        connection.connection.driver_connection.create_function(
            _SQLITE_JSON_EQUAL, 2, _json_equal, deterministic=True
        )
        same_attributes = f"(o.attributes = f.attributes OR {_SQLITE_JSON_EQUAL}(o.attributes, f.attributes))"
    # The planned rows carry the feed's values, so the upserts read this table alone.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_PLAN_TABLE} ({_FEED_DDL}, "
        "action VARCHAR(8) NOT NULL, offer_id INTEGER, old_kind VARCHAR(16), "
        "old_divisible BOOLEAN, old_status VARCHAR(16), old_channel VARCHAR(16), old_withdrawn_by VARCHAR(16), "
        "old_quantity BIGINT, old_region VARCHAR(64), "
        f"old_attributes {'JSON' if postgres else 'TEXT'}, old_window_start DATE, old_window_end DATE, "
        "old_list_price BIGINT, old_unit_price BIGINT)"
        + (" ON COMMIT DROP" if postgres else "")
    )
    identity = same_identity_sql("o", "f")
    kept = "1 = 0" if channel in _REPUBLISHES else _withdrawn_by_carrier("o")
    unchanged = (
        f"{identity} AND o.status = 'active' AND o.channel = :channel "
        # what the row would become: the feed's quantity, but never below what is promised
        f"AND o.quantity = {kept_quantity_sql('f.quantity', 'o.promised')} AND "
        + " AND ".join(same_attributes if name == "attributes" else f"o.{name} = f.{name}" for name in _COMPARED)
    )
    connection.execute(
        sa.text(
            f"INSERT INTO {_PLAN_TABLE} SELECT {', '.join('f.' + c for c in _FEED_COLUMNS)}, "
            f"CASE WHEN o.id IS NULL THEN '{_NEW}' WHEN {kept} THEN '{_KEPT}' "
            f"WHEN {identity} THEN '{_CHANGED}' ELSE '{_IDENTITY}' END, "
            "o.id, o.kind, o.divisible, o.status, o.channel, o.withdrawn_by, o.quantity, o.region, o.attributes, "
            "o.window_start, o.window_end, o.list_price, o.unit_price "
            f"FROM {_FEED_TABLE} f LEFT JOIN offers o ON o.carrier_id = :carrier_id AND o.external_id = f.external_id "
            f"WHERE o.id IS NULL OR NOT ({unchanged})"
        ),
        {"carrier_id": carrier_id, "channel": channel.value},
    )
    plan = _Plan()
    planned = kept_withdrawn = 0
    for action, count in connection.execute(sa.text(f"SELECT action, COUNT(*) FROM {_PLAN_TABLE} GROUP BY action")):
        planned += count
        if action == _NEW:
            plan.new = count
        elif action == _KEPT:
            kept_withdrawn = count
    # Kept offers count as unchanged: the sync leaves them as they are.
    plan.unchanged = len(staged.records) - planned + kept_withdrawn
    plan.matched_active = len(staged.records) - planned  # an unchanged offer is an active one of this channel
    if planned > plan.new + kept_withdrawn:
        for row in connection.execute(_ABOUT_PLAN, {"new": _NEW, "kept": _KEPT}):
            plan.matched_active += row.old_status == "active" and row.old_channel == channel
            if row.action == _IDENTITY:
                record = staged.records[row.ord]
                plan.quarantine.append((row.ord, _rejected(
                    record, f"lot {record.external_id} is a {'divisible' if row.old_divisible else 'whole'} "
                            f"{row.old_kind} offer; its kind and divisibility cannot change")))
                continue
            plan.changed.append(_Changed(
                row.ord, row.action, row.offer_id, row.old_kind, row.old_divisible, row.old_status, row.old_channel,
                row.old_withdrawn_by, row.old_quantity,
                (row.old_region, row.old_attributes, row.old_window_start, row.old_window_end,
                 row.old_list_price, row.old_unit_price),
            ))
    return plan


def _json_equal(stored: str | None, staged: str | None) -> bool:
    if stored is None or staged is None:
        return stored is staged
    return json.loads(stored) == json.loads(staged)


def _withdrawn_by_carrier(alias: str) -> str:
    return f"{alias}.status = 'withdrawn' AND {alias}.withdrawn_by = 'carrier'"


def _upsert(dialect: str, channel: OfferChannel, *, returning: bool) -> sa.TextClause:
    """INSERT … SELECT the planned rows of one action … ON CONFLICT (carrier_id, external_id) DO UPDATE.

    The quantity is guarded against the row's current promises, whatever was read before, and
    a lot the carrier withdrew is left alone unless the channel may republish it; kind and
    divisibility are the lot's identity and are never changed by a sync. The feed's channel
    becomes the offer's.
    """
    attributes = "CAST(p.attributes AS json)" if dialect == "postgresql" else "p.attributes"
    updates = ", ".join(f"{name} = excluded.{name}" for name in (*_COMPARED, "status", "channel", "updated_at"))
    guard = "" if channel in _REPUBLISHES else f" WHERE NOT ({_withdrawn_by_carrier('offers')})"
    statement = sa.text(
        "INSERT INTO offers (carrier_id, external_id, kind, region, attributes, quantity, promised, window_start, "
        "window_end, list_price, unit_price, divisible, status, channel, created_at, updated_at) "
        f"SELECT :carrier_id, p.external_id, p.kind, p.region, {attributes}, p.quantity, 0, p.window_start, "
        f"p.window_end, p.list_price, p.unit_price, p.divisible, 'active', :channel, :now, :now "
        f"FROM {_PLAN_TABLE} p WHERE p.action = :action ORDER BY p.ord "
        f"ON CONFLICT (carrier_id, external_id) DO UPDATE SET {updates}, withdrawn_by = NULL, "
        f"quantity = {kept_quantity_sql('excluded.quantity', 'offers.promised')}"
        + guard
        + (" RETURNING id, external_id, quantity" if returning else "")
    ).bindparams(sa.bindparam("now", type_=Offer.__table__.c.updated_at.type))
    if returning:
        statement = statement.columns(id=sa.Integer, external_id=sa.String, quantity=Offer.__table__.c.quantity.type)
    return statement


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
        **actor_columns(session),
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
