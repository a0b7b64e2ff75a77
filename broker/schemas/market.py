"""Shapes of offers, resource requests and allocations, in and out."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema
from marshmallow.experimental.context import Context

from broker.models.enums import AllocationStatus, OfferChannel, OfferStatus, RequestStatus, Role, WithdrawnBy
from broker.resources import KINDS, attribute_problem
from broker.schemas.common import (
    BaseSchema,
    KindField,
    QuantityField,
    Region,
    UnitPriceField,
    check_attributes,
    check_window,
)
from broker.schemas.fields import LocalDateTime, QueryId


class OfferInSchema(BaseSchema):
    """One capacity lot as a carrier publishes it, in broker units."""

    external_id = fields.String(required=True, validate=validate.Length(1, 128), metadata={"description": "the carrier's own id; the upsert key"})
    kind = KindField(required=True)
    region = Region(required=True)
    attributes = fields.Dict(keys=fields.String(), load_default=dict)
    quantity = QuantityField(required=True)
    window_start = fields.Date(required=True)
    window_end = fields.Date(required=True)
    list_price = UnitPriceField(required=True, metadata={"description": "yuan per unit before discount"})
    unit_price = UnitPriceField(required=True, metadata={"description": "yuan per unit the startup pays; often 0"})
    divisible = fields.Boolean(metadata={"description": "default: per kind; data lines are never divisible"})

    @validates_schema(skip_on_field_errors=False)  # report cross-field problems with the rest
    def _rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_window(data)
        check_attributes(data.get("kind"), data.get("attributes", {}), any_of=False)
        if "unit_price" in data and "list_price" in data and data["unit_price"] > data["list_price"]:
            raise ValidationError("Must not exceed list_price.", field_name="unit_price")
        kind = KINDS.get(data.get("kind", ""))
        if kind and not kind.divisible and data.get("divisible"):
            raise ValidationError(f"A {kind.name} is granted whole and cannot be divisible.", field_name="divisible")

    @post_load
    def _default_divisible(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data.setdefault("divisible", KINDS[data["kind"]].divisible)
        return data


class OfferBatchSchema(BaseSchema):
    offers = fields.List(fields.Nested(OfferInSchema), required=True, validate=validate.Length(1, 1000))

    @validates_schema
    def _unique_ids(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[str] = set()
        for i, offer in enumerate(data.get("offers", [])):
            if offer["external_id"] in seen:
                raise ValidationError({"offers": {i: {"external_id": ["Appears twice in this batch."]}}})
            seen.add(offer["external_id"])


class OfferSchema(BaseSchema):
    id = fields.Integer()
    carrier = fields.Function(lambda o: o.carrier.code)
    external_id = fields.String()
    kind = fields.String()
    region = fields.String()
    attributes = fields.Dict()
    quantity = QuantityField()
    promised = QuantityField()
    available = QuantityField()
    unit = fields.Function(lambda o: KINDS[o.kind].unit)
    window_start = fields.Date()
    window_end = fields.Date()
    list_price = UnitPriceField()
    unit_price = UnitPriceField()
    divisible = fields.Boolean()
    status = fields.Enum(OfferStatus)
    channel = fields.Enum(OfferChannel, metadata={
        "description": "how the carrier last published it: pull, webhook, api or upload; a full pull "
                       "withdraws only offers whose channel is pull"})
    withdrawn_by = fields.Enum(WithdrawnBy, allow_none=True, metadata={
        "description": "while withdrawn: carrier (its own withdrawal, which no pull or push undoes) or sync"})
    created_at = LocalDateTime()
    updated_at = LocalDateTime()


class OfferUpsertResultSchema(BaseSchema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    offers = fields.List(fields.Nested(OfferSchema))


class OfferQuerySchema(BaseSchema):
    kind = KindField()
    region = Region()
    carrier = fields.String(validate=validate.Length(1, 32), metadata={"description": "carrier code"})
    status = fields.Enum(OfferStatus, load_default=OfferStatus.active)
    attribute = fields.List(
        fields.String(validate=validate.Regexp(r"^[a-z_]+:.+$", error="Use name:value, e.g. gpu_model:H100.")),
        load_default=list,
        metadata={"description": "name:value, repeatable; needs kind"},
    )
    available_from = fields.Date(metadata={"description": "offers whose window includes this day (both ends of a window are in it)…"})
    available_until = fields.Date(metadata={"description": "…and this day: with both, every day from one to the other"})

    @validates_schema(skip_on_field_errors=False)  # report cross-field problems with the rest
    def _rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("attribute"):
            if "kind" not in data:
                raise ValidationError("Filtering by attribute needs a kind.", field_name="attribute")
            parse_attribute_filters(data["kind"], data["attribute"])
        start, end = data.get("available_from"), data.get("available_until")
        if start and end and start > end:
            raise ValidationError("Must not be before available_from.", field_name="available_until")

    @post_load
    def _attribute_filters(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        items = data.pop("attribute")
        data["attributes"] = parse_attribute_filters(data["kind"], items) if items else {}
        return data


def parse_attribute_filters(kind: str, items: list[str]) -> dict[str, str | int]:
    """`["gpu_model:H100", "gpu_memory_gb:80"]` as typed values, or a ValidationError on `attribute`."""
    pairs: dict[str, str | int] = {}
    for item in items:
        name, _, value = item.partition(":")
        spec = KINDS[kind].attributes.get(name)
        if spec is None:
            valid = ", ".join(KINDS[kind].attributes)
            raise ValidationError(f"Unknown attribute {name!r} for {kind}; valid: {valid}.", field_name="attribute")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if spec.type is int and not (value.isascii() and value.isdigit()):
            raise ValidationError(f"{name} takes an integer.", field_name="attribute")
        typed = int(value) if spec.type is int else value
        # The range offers are held to, so the database is never asked to compare a number it can't hold.
        problem = attribute_problem(kind, name, typed)
        if problem:
            raise ValidationError(f"{name}: {problem}", field_name="attribute")
        pairs[name] = typed
    return pairs


class RequestInSchema(BaseSchema):
    """What a startup asks for; attribute values may list acceptable alternatives."""

    kind = KindField(required=True)
    quantity = QuantityField(required=True)
    min_quantity = QuantityField(metadata={"description": "the least worth having; absent: any amount"})
    regions = fields.List(Region(), validate=validate.Length(1, 50), metadata={"description": "absent: any region"})
    attributes = fields.Dict(keys=fields.String(), load_default=dict)
    window_start = fields.Date(required=True)
    window_end = fields.Date(required=True)
    max_unit_price = UnitPriceField(metadata={"description": "price ceiling in yuan per unit; absent: none"})
    purpose = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema(skip_on_field_errors=False)  # report cross-field problems with the rest
    def _rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_window(data)
        check_attributes(data.get("kind"), data.get("attributes", {}), any_of=True)
        if "min_quantity" in data and "quantity" in data and data["min_quantity"] > data["quantity"]:
            raise ValidationError("Must not exceed quantity.", field_name="min_quantity")
        kind = KINDS.get(data.get("kind", ""))
        if kind and not kind.divisible and "min_quantity" in data and data["min_quantity"] != data.get("quantity"):
            raise ValidationError(f"A {kind.name} is granted whole: leave min_quantity out.", field_name="min_quantity")

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Stored as lists of acceptable values, sorted, so equal requests compare equal.
        data["attributes"] = {
            name: sorted(set(v if isinstance(v, list) else [v]), key=str) for name, v in data["attributes"].items()
        }
        if "regions" in data:
            data["regions"] = sorted(set(data["regions"]))
        return data


class AllocationBriefSchema(BaseSchema):
    id = fields.Integer()
    offer_id = fields.Integer()
    quantity = QuantityField()
    unit_price = UnitPriceField()
    status = fields.Enum(AllocationStatus)


class RequestSchema(BaseSchema):
    id = fields.Integer()
    startup_id = fields.Integer()
    kind = fields.String()
    unit = fields.Function(lambda r: KINDS[r.kind].unit)
    quantity = QuantityField()
    min_quantity = QuantityField(allow_none=True)
    regions = fields.List(fields.String(), allow_none=True)
    attributes = fields.Dict()
    window_start = fields.Date()
    window_end = fields.Date()
    max_unit_price = UnitPriceField(allow_none=True)
    purpose = fields.String()
    status = fields.Enum(RequestStatus)
    cycles_waited = fields.Integer()
    submitted_at = LocalDateTime()
    updated_at = LocalDateTime()
    allocations = fields.List(fields.Nested(AllocationBriefSchema))


class PendingReleaseSchema(BaseSchema):
    allocation_id = fields.Integer()
    status = fields.Enum(AllocationStatus)
    release_due_at = LocalDateTime(
        allow_none=True,
        metadata={"description": "when the next release run (BROKER_SCHEDULE_EXPIRE) is due; null if none can be said"},
    )
    message = fields.String()


class WithdrawnRequestSchema(RequestSchema):
    """The withdrawn request, and what the carrier has yet to take back for it."""

    pending_releases = fields.List(
        fields.Nested(PendingReleaseSchema),
        metadata={"description": "allocations a carrier set up (or is setting up), released there by the release run"},
    )


class RequestQuerySchema(BaseSchema):
    status = fields.Enum(RequestStatus)
    kind = KindField()
    startup_id = QueryId(metadata={"description": "staff only"})


def owner_access_details(allocation: Any) -> dict | None:
    """The carrier's access details, to the startup that owns the allocation only: null to its carrier
    (which made them), to staff, and wherever the viewer is not known (see broker.api.market.viewer_known)."""
    viewer = Context[dict].get({}).get("viewer")
    if viewer is None or viewer.role is not Role.startup or viewer.startup_id != allocation.request.startup_id:
        return None
    return allocation.access_details


class AllocationSchema(BaseSchema):
    id = fields.Integer()
    cycle_id = fields.Integer()
    request_id = fields.Integer()
    offer_id = fields.Integer()
    startup_id = fields.Function(lambda a: a.request.startup_id)
    carrier = fields.Function(lambda a: a.offer.carrier.code)
    kind = fields.Function(lambda a: a.offer.kind)
    quantity = QuantityField()
    unit_price = UnitPriceField()
    gross = fields.Function(lambda a: str(a.cost), metadata={"description": "yuan, before subsidy"})
    subsidy = fields.Function(lambda a: str(a.subsidy), metadata={"description": "yuan its subsidy awards promise"})
    net = fields.Function(lambda a: str(a.cost - a.subsidy), metadata={"description": "yuan the startup pays after subsidy"})
    awards = fields.Function(
        lambda a: [{"id": w.id, "program": w.program.code, "mode": w.mode.value, "claimant": w.claimant.value,
                    "amount": str(w.amount), "committed": str(w.committed), "redeemed": str(w.redeemed),
                    "status": w.status.value} for w in a.awards],
        metadata={"description": "the subsidy awards on it: mode instant is deducted at once, after is paid "
                                 "after usage, allotment is free units"},
    )
    status = fields.Enum(AllocationStatus)
    decision_reason = fields.String(allow_none=True)
    decided_at = LocalDateTime(allow_none=True)
    carrier_ref = fields.String(allow_none=True)
    access_details = fields.Function(
        owner_access_details, allow_none=True,
        metadata={"description": "to the owning startup only, once active, when the carrier returned them: how to "
                                 "use it (endpoint, console_url, region, model, host, username, circuit_id, "
                                 "handover_point, instructions); never a secret: secret_at_carrier true means the "
                                 "carrier issued one, to be read in its console"},
    )
    provision_attempts = fields.Integer()
    next_attempt_at = LocalDateTime(allow_none=True, metadata={"description": "while provisioning: when the next attempt is due (or the one in flight counts as lost); null: retries are exhausted, staff retry or cancel"})
    last_error = fields.String(allow_none=True, metadata={"description": "the carrier's last error, if any"})
    created_at = LocalDateTime()


class AllocationQuerySchema(BaseSchema):
    status = fields.Enum(AllocationStatus)
    cycle_id = QueryId()
    request_id = QueryId()


class QuoteQuerySchema(BaseSchema):
    quantity = QuantityField(required=True)


class QuoteSchema(BaseSchema):
    offer_id = fields.Function(lambda q: q.offer.id)
    quantity = QuantityField()
    gross = fields.Function(lambda q: str(q.gross), metadata={"description": "yuan, before subsidy"})
    subsidy = fields.Function(lambda q: str(q.subsidy), metadata={"description": "yuan a program would pay today"})
    net = fields.Function(lambda q: str(q.net), metadata={"description": "yuan the startup would pay"})
    paid_by = fields.Function(
        lambda q: [{"program": line.program.code, "amount": str(line.pays)} for line in q.paid_by],
        metadata={"description": "the program, or the stack of programs (市区协同), that pays the most (从优不重复)"},
    )
    programs = fields.Function(
        lambda q: [{"program": line.program.code, "name": line.program.name, "pays": str(line.pays),
                    "alone": None if line.alone is None else str(line.alone), "reason": line.reason} for line in q.lines],
        metadata={"description": "every program: what it pays in the best choice, what it would pay alone, or why not"},
    )
    not_eligible = fields.Dict(metadata={"description": "program code -> why it does not pay"})


class QuoteRequestSchema(RequestInSchema):
    """A request a startup is thinking of: quoted on every offer that could serve it."""

    class Meta(RequestInSchema.Meta):
        exclude = ("purpose",)


class OfferQuoteSchema(QuoteSchema):
    carrier = fields.Function(lambda q: q.offer.carrier.code)
    region = fields.Function(lambda q: q.offer.region)
    attributes = fields.Function(lambda q: q.offer.attributes)
    window_start = fields.Function(lambda q: q.offer.window_start.isoformat())
    window_end = fields.Function(lambda q: q.offer.window_end.isoformat())
    available = fields.Function(lambda q: str(q.offer.available), metadata={"description": "units not yet promised"})
    unit_price = UnitPriceField(attribute="offer.unit_price", metadata={"description": "yuan per unit, before subsidy"})
    engine_unit_price = UnitPriceField(metadata={
        "description": "yuan per unit after the best program's rate: what the matching cycle checks budgets and "
                       "price ceilings on (caps and budgets are settled at approval)"})


class RequestQuoteSchema(BaseSchema):
    kind = fields.Function(lambda q: q.data["kind"])
    quantity = fields.Function(lambda q: str(q.data["quantity"]))
    window_start = fields.Function(lambda q: q.data["window_start"].isoformat())
    window_end = fields.Function(lambda q: q.data["window_end"].isoformat())
    offers = fields.Function(
        lambda q: OfferQuoteSchema(many=True).dump(q.offers),
        metadata={"description": "every compatible active offer, cheapest net first (offer id breaks ties)"})
    compatible_available = fields.Function(lambda q: str(q.compatible_available), metadata={
        "description": "units the compatible offers have not yet promised"})
    listed_available = fields.Function(lambda q: str(q.listed), metadata={
        "description": "the most the platform lists of this kind in this window: units not yet promised on every "
                       "active offer of the kind whose window holds the request's, whatever its region, attributes or price"})
    listed_offers = fields.Integer(metadata={"description": "how many offers those are"})

