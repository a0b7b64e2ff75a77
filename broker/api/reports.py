"""The district's reports (staff): the same figures as the console's report pages, filtered by the same query."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER
from broker.auth import current_account
from broker.clock import local_date, now
from broker.db import get_session
from broker.schemas.reports import (
    CarrierQuerySchema,
    CarrierStatementSchema,
    ComplianceQuerySchema,
    ComplianceSchema,
    FulfilmentQuerySchema,
    FulfilmentSchema,
    GapQuerySchema,
    GapSchema,
    PackQuerySchema,
    PackSchema,
    RatingInSchema,
    RatingSchema,
    SpendQuerySchema,
    SpendSchema,
    UtilisationQuerySchema,
    UtilisationSchema,
    carrier_filters,
    compliance_filters,
    fulfilment_filters,
    gap_filters,
    pack_filters,
    spend_filters,
    utilisation_filters,
)
from broker.services import (
    district_reports, ratings, report_carriers, report_compliance, report_gap, report_pack, report_spend, report_utilisation,
)

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="The district's reports")


@blp.route("/reports/fulfilment", methods=["GET"])
@blp.arguments(FulfilmentQuerySchema, location="query")
@blp.response(200, FulfilmentSchema)
@blp.doc(security=BEARER)
def fulfilment(args: dict[str, Any]) -> Any:
    """Staff: requests → proposed → approved → active in a period, the times to approval and to activation, rejection reasons and lapses."""
    filters = fulfilment_filters(args, local_date(now()))
    return district_reports.fulfilment(get_session(), current_account(), filters)


@blp.route("/reports/gap", methods=["GET"])
@blp.arguments(GapQuerySchema, location="query")
@blp.response(200, GapSchema)
@blp.doc(security=BEARER)
def gap(args: dict[str, Any]) -> Any:
    """Staff: surveyed and requested demand, pledged, published and allocated supply in a period, the unmet part and why."""
    session = get_session()
    filters = gap_filters(args, local_date(now()), report_gap.chosen_campaign_days(session, args.get("campaign")))
    return report_gap.gap(session, current_account(), filters)


# --- report 7: the performance-evaluation pack (绩效自评), and the rating it counts -------------------


@blp.route("/reports/pack", methods=["GET"])
@blp.arguments(PackQuerySchema, location="query")
@blp.response(200, PackSchema)
@blp.doc(security=BEARER)
def pack(args: dict[str, Any]) -> Any:
    """Staff: one subsidy program's fiscal year under 决策, 过程, 产出, 效益 and 满意度 (the 绩效自评 pack)."""
    filters = pack_filters(args, local_date(now()))
    return report_pack.pack(get_session(), current_account(), filters)


@blp.route("/allocations/<int:allocation_id>/rating", methods=["POST"])
@blp.arguments(RatingInSchema)
@blp.response(201, RatingSchema)
@blp.doc(security=BEARER)
def rate(args: dict[str, Any], allocation_id: int) -> Any:
    """The owning startup rates a completed (released) allocation once: a score 1–5 and an optional comment."""
    return ratings.rate_allocation(get_session(), current_account(), allocation_id, args["score"],
                                   args.get("comment"), now())

@blp.route("/reports/utilisation", methods=["GET"])
@blp.arguments(UtilisationQuerySchema, location="query")
@blp.response(200, UtilisationSchema)
@blp.doc(security=BEARER)
def utilisation(args: dict[str, Any]) -> Any:
    """Staff: allocated against used per kind (line-days for data lines), and the idle grants and the allocations a page at a time, from the usage rollup of `as_of`."""
    filters = utilisation_filters(args, local_date(now()))
    return report_utilisation.utilisation(get_session(), current_account(), filters, args.get("page", 1),
                                          args.get("idle_page", 1))


@blp.route("/reports/carriers", methods=["GET"])
@blp.arguments(CarrierQuerySchema, location="query")
@blp.response(200, CarrierStatementSchema)
@blp.doc(security=BEARER)
def carriers(args: dict[str, Any]) -> Any:
    """Staff (every carrier) or a carrier (its own): per carrier and month, pledged, delivered, redeemed, pending
    settlement and provisioning failures."""
    filters = carrier_filters(args, local_date(now()))
    return report_carriers.carrier_statement(get_session(), current_account(), filters)


@blp.route("/reports/spend", methods=["GET"])
@blp.arguments(SpendQuerySchema, location="query")
@blp.response(200, SpendSchema)
@blp.doc(security=BEARER)
def spend(args: dict[str, Any]) -> Any:
    """Staff: subsidy committed, redeemed, written off, released and clawed back from the ledger, by program, sector,
    carrier, firm size and month; the firms at their annual cap; leverage (docs/reports.md)."""
    return report_spend.spend(get_session(), current_account(), spend_filters(args, local_date(now())))


@blp.route("/reports/compliance", methods=["GET"])
@blp.arguments(ComplianceQuerySchema, location="query")
@blp.response(200, ComplianceSchema)
@blp.doc(security=BEARER)
def compliance(args: dict[str, Any]) -> Any:
    """Staff: clawbacks and refusals at approval (related party, double subsidy) by reason, evidence rejected, objections
    raised, upheld and dismissed in a period."""
    return report_compliance.compliance(get_session(), current_account(),
                                        compliance_filters(args, local_date(now())))
