"""The district's reports (staff): the same figures as the console's report pages, filtered by the same query."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER
from broker.auth import current_account
from broker.clock import SHANGHAI, now
from broker.db import get_session
from broker.schemas.reports import (
    CarrierQuerySchema,
    CarrierStatementSchema,
    FulfilmentQuerySchema,
    FulfilmentSchema,
    UtilisationQuerySchema,
    UtilisationSchema,
    carrier_filters,
    fulfilment_filters,
    utilisation_filters,
)
from broker.services import district_reports, report_carriers, report_utilisation

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="The district's reports")


@blp.route("/reports/fulfilment", methods=["GET"])
@blp.arguments(FulfilmentQuerySchema, location="query")
@blp.response(200, FulfilmentSchema)
@blp.doc(security=BEARER)
def fulfilment(args: dict[str, Any]) -> Any:
    """Staff: requests → proposed → approved → active in a period, the times to approval and to activation, rejection reasons and lapses."""
    filters = fulfilment_filters(args, now().astimezone(SHANGHAI).date())
    return district_reports.fulfilment(get_session(), current_account(), filters)


@blp.route("/reports/utilisation", methods=["GET"])
@blp.arguments(UtilisationQuerySchema, location="query")
@blp.response(200, UtilisationSchema)
@blp.doc(security=BEARER)
def utilisation(args: dict[str, Any]) -> Any:
    """Staff: allocated against used per allocation and per kind (line-days for data lines), and the idle grants."""
    filters = utilisation_filters(args, now().astimezone(SHANGHAI).date())
    return report_utilisation.utilisation(get_session(), current_account(), filters)


@blp.route("/reports/carriers", methods=["GET"])
@blp.arguments(CarrierQuerySchema, location="query")
@blp.response(200, CarrierStatementSchema)
@blp.doc(security=BEARER)
def carriers(args: dict[str, Any]) -> Any:
    """Staff: per carrier and month, pledged, delivered, redeemed, pending settlement and provisioning failures."""
    filters = carrier_filters(args, now().astimezone(SHANGHAI).date())
    return report_carriers.carrier_statement(get_session(), current_account(), filters)
