"""When a firm that answered demand surveys without registering is verified as a startup, its answers
become the startup's: each confirmed line of a respondent with the startup's credit code is moved to
the startup (unless the startup declared the same kind, region and month itself: its own line stands
and the respondent's goes), and the respondent is marked attached. So a firm is counted once, as the
startup, and revises those lines from the portal while the campaign is open.

Lines waiting for confirmation were never counted and are dropped. Kept apart from
`broker.services.surveys` because `accounts.verify_startup` calls it, and surveys imports accounts.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.models import Startup
from broker.models.surveys import SurveyDeclaration, SurveyRespondent


def attach_answers(session: Session, startup: Startup, now: dt.datetime) -> int:
    """Move the confirmed survey answers given under the startup's credit code to it; returns the lines moved."""
    respondents = list(session.scalars(sa.select(SurveyRespondent).where(
        SurveyRespondent.uscc == startup.uscc, SurveyRespondent.startup_id.is_(None)).with_for_update()
        .execution_options(populate_existing=True)))
    moved = 0
    for respondent in respondents:
        own = {tuple(row) for row in session.execute(
            sa.select(SurveyDeclaration.kind, SurveyDeclaration.region, SurveyDeclaration.month)
            .where(SurveyDeclaration.campaign_id == respondent.campaign_id, SurveyDeclaration.startup_id == startup.id))}
        for line in session.scalars(sa.select(SurveyDeclaration).where(SurveyDeclaration.respondent_id == respondent.id)):
            if (line.kind, line.region, line.month) in own:
                session.delete(line)
            else:
                line.respondent_id, line.startup_id, line.updated_at = None, startup.id, now
                moved += 1
        respondent.startup_id = startup.id
        respondent.pending_lines, respondent.pending_since = None, None
    session.flush()
    return moved
