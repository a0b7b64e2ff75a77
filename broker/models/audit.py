"""The append-only audit log, written for every audited row in the same flush that changes it.

Writing it from a flush hook rather than from each service means a state change cannot be
made without its entry: the entry and the change commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from broker.db import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    # With a token staff minted for another account, actor_id is that account and this is the staff member.
    acting_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[int]
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)

    __table_args__ = (sa.Index("ix_audit_log_entity", "entity_type", "entity_id"),)


class Audited:
    """Mixin: changes to rows of this model are written to the audit log."""

    __audit_exclude__: frozenset[str] = frozenset()
    _audit_action: str | None = None

    def audit_as(self, action: str) -> None:
        """Name the change about to be made, for its audit entry (default: create/update)."""
        self._audit_action = action


def set_actor(session: Session, actor_id: int, acting_staff_id: int | None = None) -> None:
    """Who the audit log names for what `session` changes from now on."""
    session.info["actor_id"] = actor_id
    session.info["acting_staff_id"] = acting_staff_id


def actor_columns(session: Session) -> dict[str, int | None]:
    """The audit row's "who" for `session`: for the flush hook and for bulk Core writes alike."""
    return {"actor_id": session.info.get("actor_id"), "acting_staff_id": session.info.get("acting_staff_id")}


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _changes(obj: Audited, created: bool) -> tuple[dict | None, dict]:
    state = sa.inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in obj.__audit_exclude__:
            continue
        history = state.attrs[attr.key].history
        if created:
            after[attr.key] = _jsonable(getattr(obj, attr.key))
        elif history.has_changes():
            before[attr.key] = _jsonable(history.deleted[0] if history.deleted else None)
            after[attr.key] = _jsonable(history.added[0] if history.added else None)
    return (None if created else before), after


def _write_audit_entries(session: Session, _flush_context: Any) -> None:
    rows = []
    now = utcnow()
    actor = actor_columns(session)
    for obj, created in [(o, True) for o in session.new] + [(o, False) for o in session.dirty]:
        if not isinstance(obj, Audited):
            continue
        before, after = _changes(obj, created)
        if not after:
            continue
        rows.append(
            {
                "at": now,
                **actor,
                "action": obj._audit_action or ("create" if created else "update"),
                "entity_type": obj.__tablename__,  # type: ignore[attr-defined]
                "entity_id": sa.inspect(obj).mapper.primary_key_from_instance(obj)[0],
                "before": before,
                "after": after,
            }
        )
        obj._audit_action = None
    if rows:
        # Core insert: adding ORM objects is not allowed while a flush is executing.
        session.connection().execute(sa.insert(AuditEntry.__table__), rows)


def install_audit(session_factory: Any) -> None:
    """Write audit entries for every session that `session_factory` makes (once per factory).

    The factory carries its own mark. `sa.event.contains` can't be trusted for this: SQLAlchemy
    keys its listener registry by `id()` of the factory's Session class and never drops the
    key of a class-level listener, so a new factory whose class reuses a collected one's
    address looked installed and wrote no audit log (tests bind a factory per test: 209 of
    300 fresh factories were skipped that way).
    """
    if session_factory.__dict__.get("_broker_audit_installed"):
        return
    sa.event.listen(session_factory, "after_flush", _write_audit_entries)
    session_factory._broker_audit_installed = True
