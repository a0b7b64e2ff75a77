"""The district's reports (staff): the same figures as the console's report pages, filtered by the same query."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER
from broker.auth import current_account
from broker.clock import SHANGHAI, now
from broker.db import get_session
from broker.schemas.reports import FulfilmentQuerySchema, FulfilmentSchema, fulfilment_filters
from broker.services import district_reports

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="The district's reports")


@blp.route("/reports/fulfilment", methods=["GET"])
@blp.arguments(FulfilmentQuerySchema, location="query")
@blp.response(200, FulfilmentSchema)
@blp.doc(security=BEARER)
def fulfilment(args: dict[str, Any]) -> Any:
    """Staff: requests → proposed → approved → active in a period, the times to approval and to activation, rejection reasons and lapses."""
    filters = fulfilment_filters(args, now().astimezone(SHANGHAI).date())
    return district_reports.fulfilment(get_session(), current_account(), filters)


from broker.schemas.reports import SpendQuerySchema, SpendSchema, spend_filters  # noqa: E402  (appended per report)
from broker.services import report_spend  # noqa: E402


@blp.route("/reports/spend", methods=["GET"])
@blp.arguments(SpendQuerySchema, location="query")
@blp.response(200, SpendSchema)
@blp.doc(security=BEARER)
def spend(args: dict[str, Any]) -> Any:
    """Staff: subsidy committed, redeemed, written off, released and clawed back from the ledger, by program, sector,
    carrier, firm size and month; the firms at their annual cap; leverage (docs/reports.md)."""
    return report_spend.spend(get_session(), current_account(), spend_filters(args, now().astimezone(SHANGHAI).date()))


from broker.schemas.reports import ComplianceQuerySchema, ComplianceSchema, compliance_filters  # noqa: E402
from broker.services import report_compliance  # noqa: E402


@blp.route("/reports/compliance", methods=["GET"])
@blp.arguments(ComplianceQuerySchema, location="query")
@blp.response(200, ComplianceSchema)
@blp.doc(security=BEARER)
def compliance(args: dict[str, Any]) -> Any:
    """Staff: clawbacks by reason, evidence rejected, objections raised, upheld and dismissed in a period (docs/reports.md:
    refusals at approval are not recorded)."""
    return report_compliance.compliance(get_session(), current_account(),
                                        compliance_filters(args, now().astimezone(SHANGHAI).date()))
