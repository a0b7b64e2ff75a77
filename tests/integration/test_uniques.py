"""A unique violation read from the real database, on SQLite and PostgreSQL, names its constraint
and becomes the 409 in the one table of messages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.db import Base
from broker.models import Carrier, MatchingCycle, Offer, SubsidyProgram
from broker.uniques import UNIQUE_VIOLATIONS, conflict_for, violated_constraint


def _unique_names() -> set[str]:
    names = set()
    for table in Base.metadata.tables.values():
        names |= {str(c.name) for c in table.constraints if isinstance(c, sa.UniqueConstraint)}
        names |= {str(i.name) for i in table.indexes if i.unique}
    return names


def test_every_unique_constraint_says_what_already_exists():
    assert _unique_names() - set(UNIQUE_VIOLATIONS) == set()
    assert set(UNIQUE_VIOLATIONS) - _unique_names() == set()  # no message for a constraint that is gone


def _offer(carrier: Carrier) -> Offer:
    return Offer(carrier_id=carrier.id, external_id="lot-1", kind="gpu", region="sh", attributes={},
                 quantity=Decimal(10), window_start=dt.date(2026, 12, 1), window_end=dt.date(2026, 12, 31),
                 list_price=Decimal(2), unit_price=Decimal(1))


def _program(code: str) -> SubsidyProgram:
    return SubsidyProgram(code=code, name="券", kinds=["gpu"], rate=Decimal("0.5"), cap_per_startup=Decimal(1),
                          budget=Decimal(10), starts_on=dt.date(2027, 1, 1), ends_on=dt.date(2028, 1, 1))


@pytest.mark.parametrize(
    ("duplicate", "constraint", "field"),
    [
        (lambda carrier: Carrier(code=carrier.code, name="again", adapter="telecom"), "uq_carriers_code", "code"),
        (_offer, "uq_offers_carrier_id_external_id", "external_id"),
        (lambda carrier: _program("dup"), "uq_subsidy_programs_code", "code"),
        (lambda carrier: MatchingCycle(status="running", scheduled_for=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)),
         "uq_matching_cycles_one_running", "cycle"),
    ],
    ids=["single-column", "two-columns", "program", "partial-index"],
)
def test_a_duplicate_names_its_constraint_and_becomes_its_conflict(session, duplicate, constraint, field):
    carrier = Carrier(code="ctc", name="China Telecom", adapter="telecom")
    session.add(carrier)
    session.flush()
    session.add_all([_offer(carrier), _program("dup"),
                     MatchingCycle(status="running", scheduled_for=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))])
    session.commit()
    session.add(duplicate(carrier))
    with pytest.raises(sa.exc.IntegrityError) as caught:
        session.commit()
    session.rollback()
    assert violated_constraint(caught.value) == constraint
    conflict = conflict_for(caught.value)
    assert conflict.status_code == 409
    assert conflict.message == UNIQUE_VIOLATIONS[constraint][1] and field in conflict.errors


def test_another_integrity_failure_is_not_a_conflict(session):
    session.add(_program("bad"))
    session.flush()
    with pytest.raises(sa.exc.IntegrityError) as caught:
        session.execute(sa.update(SubsidyProgram).values(committed=SubsidyProgram.budget + 1))
    session.rollback()
    assert violated_constraint(caught.value) is None and conflict_for(caught.value) is None
