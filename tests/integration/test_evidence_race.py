"""Two staff verify the two pieces an award needs at the same moment: the award still ends complete.

Each review works out `evidence_complete` from the verified pieces it can see. Without the award's
row lock in `evidence._lock_for_review` the second review reads before the first commits, both see
one verified piece of two, and the award stays incomplete for good; with it the second waits,
then sees both. Runs on both databases (on SQLite the wait is for the one writer's lock).
"""

import datetime as dt
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.models import Account, Allocation, Award, EvidenceType, Role
from broker.services import cycles, evidence, policy
from tests.world import build_district, committed_app, session_of

pytestmark = [pytest.mark.committing]

WINDOW = (dt.date(2026, 12, 8), dt.date(2026, 12, 10))
AT = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.timezone.utc)


def test_two_reviews_at_once_both_count(databases, tmp_path):
    url = databases.create()
    app = committed_app(url, str(tmp_path))
    store = app.extensions["broker.evidence_store"]
    session = session_of(app)
    district = build_district(session, offers=1, startups=1, window=WINDOW)
    staff = session.get(Account, district.staff_id)
    policy.create_program(session, staff, {
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": Decimal("0.3"), "cap_per_startup": Decimal(1000),
        "budget": Decimal(10000), "funding_document": "沪经信智〔2025〕489号", "starts_on": dt.date(2026, 1, 1),
        "ends_on": dt.date(2027, 1, 1), "evidence_required": [EvidenceType.contract, EvidenceType.invoice]}, AT)
    outcome = cycles.run_cycle(session, AT)
    [allocation_id] = session.scalars(sa.select(Allocation.id).where(Allocation.cycle_id == outcome.cycle.id))
    cycles.approve_allocation(session, staff, allocation_id, None, AT)
    award_id = session.scalar(sa.select(Award.id).where(Award.allocation_id == allocation_id))
    startup = session.get(Account, district.startup_accounts[0])
    contract, _ = evidence.upload(session, startup, store, award_id, EvidenceType.contract,
                                  evidence.Upload(b"%PDF-1.7 contract", "contract.pdf"), AT)
    invoice, _ = evidence.upload(session, startup, store, award_id, EvidenceType.invoice,
                                 evidence.Upload(b"%PDF-1.7 invoice", "invoice.pdf"), AT)
    session.close()

    first, second = session_of(app), session_of(app)
    # Each reviewer read, and that transaction ended, before the race: on SQLite every transaction writes.
    reviewer = first.scalar(sa.select(Account).where(Account.role == Role.staff))
    first.rollback()
    other_reviewer = second.scalar(sa.select(Account).where(Account.role == Role.staff))
    second.rollback()
    evidence.verify.__wrapped__(first, reviewer, contract.id, AT)  # reviewed, not yet committed
    answers = {}
    racer = threading.Thread(target=lambda: answers.update(
        piece=evidence.verify(second, other_reviewer, invoice.id, AT).id))
    racer.start()
    racer.join(timeout=1.0)
    waited = racer.is_alive()  # for the award's lock
    first.commit()
    racer.join(timeout=30)
    assert not racer.is_alive() and answers == {"piece": invoice.id}
    first.close()
    second.close()

    check = session_of(app)
    assert check.get(Award, award_id).evidence_complete is True
    check.close()
    assert waited
