"""request limits: the policy's maximum quantity per request of each kind, the encoding a CSV
catalog was read in, and offers' attributes healed of NUL and lone surrogates

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Saved policies name no maximum: every kind keeps its default until staff set one.
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_request_quantity", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("carrier_syncs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encoding", sa.String(length=16), nullable=True))
    _heal_offer_attributes()


# Before this revision a carrier could publish an attribute holding a NUL (PostgreSQL's json type
# keeps \u0000, and then every filtered search of offers failed) or a lone surrogate. Such text
# is now refused; what was stored is rewritten with the character as its escape, as the
# quarantine stores it. Written out here, not imported, so this revision never changes.
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _heal_offer_attributes() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    text = "CAST(attributes AS text)" if postgres else "attributes"
    find = "strpos" if postgres else "instr"
    # JSON text writes both as \u escapes (json.dumps escapes every non-ASCII character, so \ud
    # also finds Hangul and emoji pairs: those are read and left as they are).
    suspects = connection.execute(sa.text(
        f"SELECT id, {text} FROM offers WHERE {find}({text}, :nul) > 0 OR {find}(lower({text}), :surrogate) > 0"
    ), {"nul": "\\u0000", "surrogate": "\\ud"}).all()
    update = sa.text(
        "UPDATE offers SET attributes = " + ("CAST(:attributes AS json)" if postgres else ":attributes") + " WHERE id = :id"
    )
    for offer_id, stored in suspects:
        attributes = json.loads(stored)
        healed = _scrub(attributes)
        if healed != attributes:
            connection.execute(update, {"id": offer_id, "attributes": json.dumps(healed)})


def downgrade() -> None:
    with op.batch_alter_table("carrier_syncs", schema=None) as batch_op:
        batch_op.drop_column("encoding")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_column("max_request_quantity")
