"""The monthly report email to district staff (issue 14): the previous calendar month's headline
figures in words, with the month's report tables attached as the console's XLSX.

The `monthly_report` job (08:00 on the 1st, Asia/Shanghai) calls `send_monthly_report`. Every
figure is taken from the reports' own reads for that month, never counted a second way:

- requests submitted, approved, active and the fulfilment rate (approved ÷ submitted):
  `district_reports.fulfilment`'s period total;
- subsidy committed and redeemed (yuan): `report_spend.spend`'s period total (the ledger's flows);
- firms served (startups with a granted allocation whose window overlaps the month) and idle grants:
  `report_utilisation.utilisation`.

The attachment is built by the console (`broker/web/monthly_report.py`, passed in as `workbook`, since a
service imports no web layer) from the same tables and writer as the three reports' XLSX exports.

It reaches every active district person (staff or admin) whose emails are on and who has not turned
off the kind "monthly_report" (/settings/notifications, or the email's opt-out link), once a month:
the outbox row's dedupe key "monthly:<YYYY-MM>:person:<id>" makes a rerun write nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.db import transaction
from broker.models import Account, Role
from broker.models.outbox import EmailStatus, OutboxEmail
from broker.models.people import Person, PersonStatus, Side
from broker.services import notifications
from broker.services.district_reports import FulfilmentFilters, FulfilmentReport, fulfilment
from broker.services.report_pack import percent_of
from broker.services.report_spend import SpendFilters, SpendReport, spend
from broker.services.report_utilisation import (
    AllocationUse, UtilisationFilters, UtilisationReport, utilisation, utilisation_lines,
)

KIND = "monthly_report"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ATTACHMENT_NAMES = {"zh_CN": "月度报告-{month}.xlsx", "en": "monthly-report-{month}.xlsx"}
REPORTS_PATH = "/staff/reports/fulfilment"


@dataclass(frozen=True)
class MonthlyReport:
    month: str  # "2026-11"
    start: dt.date
    end: dt.date  # inclusive
    fulfilment: FulfilmentReport
    spend: SpendReport
    utilisation: UtilisationReport
    use_lines: list[AllocationUse]  # every allocation of the utilisation report (its page holds fifty)
    idle_lines: list[AllocationUse]  # every idle grant

    @property
    def fulfilment_rate(self) -> Decimal | None:
        """Percent of the month's requests that had an allocation approved, to two places."""
        return percent_of(self.fulfilment.total.approved, self.fulfilment.total.requests)

    @property
    def firms_served(self) -> int:
        return self.utilisation.firms


def previous_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the calendar month before `today`'s."""
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def monthly_report(session: Session, actor: Account, start: dt.date, end: dt.date) -> MonthlyReport:
    """The month's fulfilment, spend and utilisation reports, unfiltered (staff only, as each report)."""
    use = UtilisationFilters(start, end)
    return MonthlyReport(f"{start:%Y-%m}", start, end, fulfilment(session, actor, FulfilmentFilters(start, end)),
                         spend(session, actor, SpendFilters(start, end)), utilisation(session, actor, use),
                         list(utilisation_lines(session, actor, use)),
                         list(utilisation_lines(session, actor, use, idle_only=True)))


# The console's XLSX of a report in a language (broker.web.monthly_report.workbook).
Workbook = Callable[[MonthlyReport, str], bytes]


@transaction
def send_monthly_report(session: Session, now: dt.datetime, workbook: Workbook) -> int:
    """Write last month's report email, with its XLSX, to every district person who takes it; returns how
    many were new (a rerun for the same month writes none)."""
    start, end = previous_month(local_date(now))
    month = f"{start:%Y-%m}"
    people = [person for person in _recipients(session) if KIND not in (person.email_muted or [])]
    keys = {person.id: f"monthly:{month}:person:{person.id}" for person in people}
    done = set(session.scalars(sa.select(OutboxEmail.dedupe_key).where(OutboxEmail.dedupe_key.in_(keys.values()))))
    people = [person for person in people if keys[person.id] not in done]
    if not people:
        return 0
    config = session.info.get("config") or {}
    base_url = str(config.get("PUBLIC_URL") or notifications.DEFAULT_PUBLIC_URL).rstrip("/")
    report = monthly_report(session, people[0].account, start, end)  # every recipient is staff: one read serves all
    files: dict[str, bytes] = {}
    rows = []
    for person in people:
        language = person.language if person.language in notifications.LANGUAGES else "zh_CN"
        if language not in files:
            files[language] = workbook(report, language)
        unsubscribe = notifications.unsubscribe_link(config["SECRET_KEY"], base_url, person.id, KIND, now)
        subject, body = notifications.render(language, KIND, _facts(report, person, base_url, unsubscribe))
        rows.append({"to_address": person.email, "subject": subject[:300], "body": body, "status": EmailStatus.pending,
                     "attempts": 0, "next_attempt_at": now, "created_at": now, "dedupe_key": keys[person.id],
                     "headers": notifications.unsubscribe_headers(unsubscribe),
                     "attachment_name": ATTACHMENT_NAMES[language].format(month=month),
                     "attachment_type": XLSX_TYPE, "attachment": files[language]})
    return notifications.write_once(session, rows)


def _recipients(session: Session) -> list[Person]:
    return list(session.scalars(
        sa.select(Person).join(Account, Person.account_id == Account.id)
        .where(Person.side == Side.district, Person.status == PersonStatus.active, Person.email_off.is_(False),
               Account.role.in_((Role.staff, Role.admin)))
        .order_by(Person.id)))


def _facts(report: MonthlyReport, person: Person, base_url: str, unsubscribe: str) -> dict[str, Any]:
    total, money = report.fulfilment.total, report.spend.total
    rate = report.fulfilment_rate
    return {
        "person": person.name, "month": report.month, "start": report.start.isoformat(), "end": report.end.isoformat(),
        "submitted": total.requests, "approved": total.approved, "active": total.active,
        "rate": "—" if rate is None else f"{rate}%", "committed": notifications.yuan(money.committed),
        "redeemed": notifications.yuan(money.redeemed), "firms": report.firms_served,
        "idle": report.utilisation.idle_total, "link": f"{base_url}{REPORTS_PATH}", "unsubscribe": unsubscribe,
        "settings": f"{base_url}/settings/notifications",
    }
