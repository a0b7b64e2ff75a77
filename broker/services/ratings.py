"""Satisfaction (满意度): the one question a startup answers about an allocation once it completed.

A startup's people rate their own company's allocation after it was released (used up, ended or
expired at the carrier), once: a score from 1 to 5 and an optional comment of at most 300 characters.
Once given it stands (no revision): the performance-evaluation pack counts each allocation once and
a figure already reported never moves under it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction
from broker.errors import Conflict, InvalidInput
from broker.models import Account, Allocation, AllocationStatus, Role
from broker.models.ratings import MAX_RATING_COMMENT, RATING_SCORES, AllocationRating
from broker.services.accounts import require_role
from broker.services.market import get_allocation

# An allocation a startup may rate: it ran its course (released covers used up, ended and expired).
COMPLETED = frozenset({AllocationStatus.released})


def rateable(allocation: Allocation) -> bool:
    return allocation.status in COMPLETED


def rating_of(session: Session, allocation_id: int) -> AllocationRating | None:
    return session.scalar(sa.select(AllocationRating).where(AllocationRating.allocation_id == allocation_id))


@transaction
def rate_allocation(session: Session, actor: Account, allocation_id: int, score: object, comment: str | None,
                    now: dt.datetime) -> AllocationRating:
    """The startup rates its own completed allocation, once. Another company's allocation is NotFound."""
    require_role(actor, Role.startup)
    problems: dict[str, list[str]] = {}
    try:
        value = int(str(score).strip()) if not isinstance(score, bool) else None
    except ValueError:
        value = None
    if value not in RATING_SCORES:
        problems["score"] = ["Give a whole number from 1 to 5."]
    comment = (comment or "").strip() or None
    if comment and len(comment) > MAX_RATING_COMMENT:
        problems["comment"] = [f"At most {MAX_RATING_COMMENT} characters."]
    if problems:
        raise InvalidInput("The rating is not valid.", problems)
    allocation = get_allocation(session, actor, allocation_id)
    if not rateable(allocation):
        raise Conflict(f"Only a completed (released) allocation can be rated; this one is {allocation.status.value}.")
    if rating_of(session, allocation.id) is not None:
        raise Conflict("This allocation was rated already; a rating is given once.")
    rating = AllocationRating(allocation_id=allocation.id, startup_id=allocation.request.startup_id, score=value,
                              comment=comment, rated_by_id=actor.id, created_at=now)
    session.add(rating)
    session.flush()
    return rating
