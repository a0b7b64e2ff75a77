"""What a caller is told when a unique constraint refuses a row.

A service that checks before it inserts ("is this code taken?") answers in its own words, but
two requests can pass the check together, and the database then refuses the second at commit.
That refusal (PostgreSQL SQLSTATE 23505, SQLite "UNIQUE constraint failed") is read here and
turned into the 409 the check would have given, from one table of constraint names; the API's
error handler rolls the session back and answers with it. A pre-check with nothing more to
say raises `duplicate()` from the same table, so both paths say the same thing.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from broker.errors import Conflict

# Constraint (or unique index) name -> (the field the caller sent, what already exists).
# Every unique constraint in the models has a line (tests/integration/test_uniques.py checks).
UNIQUE_VIOLATIONS: dict[str, tuple[str, str]] = {
    "uq_carriers_code": ("code", "A carrier with this code already exists."),
    "uq_startups_uscc_holder": (
        "uscc",
        "A startup with this unified social credit code is already registered. If the code is your company's "
        "and you did not register it, contact {district_contact}: staff remove a registration made in another "
        "company's name, and you can then register.",
    ),
    "uq_api_tokens_token_hash": ("token", "A token with this secret already exists; issue another."),
    "uq_offers_carrier_id_external_id": (
        "external_id",
        "An offer with this external id was published by another request of this carrier at the same "
        "time; nothing was changed: send the batch again to update it.",
    ),
    "uq_subsidy_programs_code": ("code", "A subsidy program with this code already exists."),
    "uq_subsidy_stack_groups_code": ("code", "A stack group with this code already exists."),
    "uq_subsidy_awards_allocation_id_program_id": ("allocation_id", "This allocation already has an award from that program."),
    "uq_ledger_entries_idempotency_key": ("idempotency_key", "That ledger entry was already posted."),
    "uq_subsidy_notice_items_award_id": ("award_ids", "That award is already in a public notice: an award is noticed once."),
    "uq_settlement_statements_program_id_period": (
        "period", "This program's statement for this period was built by another request at the same time."),
    "uq_settlement_lines_statement_id_award_id": ("award_id", "This statement already has a line for that award."),
    "uq_subsidy_bans_award_id": ("award_id", "This award was already clawed back."),
    "uq_idempotency_records_account_id_key": (
        "Idempotency-Key",
        "A request with this Idempotency-Key is being made at the same time; retry it to get its result.",
    ),
    "uq_matching_cycles_one_running": ("cycle", "A matching cycle is already running."),
    "uq_allocations_cycle_id_request_id_offer_id": (
        "allocation",
        "This cycle already allocates this offer to this request.",
    ),
    "uq_appeals_one_open": ("allocation_id", "An appeal on this allocation is still waiting for an answer."),
    # A list is replaced under its declarant's row lock, and the schema refuses a code listed twice.
    "uq_related_parties_startup_uscc": ("uscc", "This startup already lists this unified social credit code."),
    "uq_related_parties_carrier_uscc": ("uscc", "This carrier already lists this unified social credit code."),
    "uq_webhook_subscriptions_account_id": (
        "url",
        "This account's webhook was set by another request at the same time; send it again to replace it.",
    ),
    "uq_webhook_deliveries_event_id_subscription_id": ("event_id", "This event is already queued for this webhook."),
    "uq_usage_reports_carrier_id_external_id": ("external_id", "This usage record was already received."),
    "uq_job_runs_job_slot": ("slot", "This job has already run for this slot."),
    "uq_push_receipts_carrier_id_push_id": ("body", "This push was already received; a replayed push is refused."),
    # Emails are compared case-insensitively: the key is the email lower-cased.
    "uq_people_email_key": ("email", "A person with this email already exists."),
    "uq_people_account_id": ("account_id", "This account already belongs to a person."),
    "uq_invitations_token_hash": ("token", "An invitation with this secret already exists; invite again."),
    "uq_password_resets_token_hash": ("token", "A reset link with this secret already exists; ask again."),
    # An event reaches a person by email once: the notifications insert with ON CONFLICT DO NOTHING.
    "uq_outbox_emails_dedupe_key": ("dedupe_key", "This event was already emailed to this person."),
    "uq_survey_declarations_campaign_id_startup_id_kind_region_month": (
        "month", "This survey already has a line for this kind, region and month; revise that line."),
    "uq_survey_declarations_campaign_id_respondent_id_kind_region_month": (
        "month", "This answer already has a line for this kind, region and month; revise that line."),
    # One answer per code and campaign: a second one revises it through the emailed link.
    "uq_survey_respondents_campaign_id_uscc": (
        "uscc", "This survey already has an answer for this unified social credit code; revise it through the "
                "link emailed to its contact."),
    "uq_survey_respondents_token_hash": ("token", "A survey link with this secret already exists; send the answer again."),
    "uq_pledges_carrier_id_period_kind": ("kind", "This carrier already pledged this kind for this period; revise that pledge."),
    "uq_allocation_ratings_allocation_id": ("allocation_id", "This allocation was already rated; a rating is given once."),
}


def duplicate(constraint: str, **context: str) -> Conflict:
    """The 409 for a row that `constraint` already has, as a pre-check raises it.

    `context` fills a message's placeholders (`district_contact`: whom a company calls).
    """
    field, message = UNIQUE_VIOLATIONS[constraint]
    return Conflict(message.format(**context) if context else message, {field: ["Already exists."]})


def conflict_for(error: IntegrityError, **context: str) -> Conflict | None:
    """The 409 for a unique violation, or None if `error` is another integrity failure (a bug)."""
    constraint = violated_constraint(error)
    if constraint is None:
        return None
    if constraint in UNIQUE_VIOLATIONS:
        return duplicate(constraint, **context)
    return Conflict("This already exists.", {constraint: ["Already exists."]})


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the unique constraint `error` broke, on PostgreSQL or SQLite; None if not a unique one."""
    original = error.orig
    if getattr(original, "sqlstate", None) is not None:  # psycopg
        if original.sqlstate != "23505":
            return None
        return original.diag.constraint_name or "unique"
    text = str(original)
    prefix = "UNIQUE constraint failed: "
    if not text.startswith(prefix):
        return None
    # SQLite names the columns, not the constraint: "UNIQUE constraint failed: offers.carrier_id, offers.external_id".
    columns = [part.strip() for part in text[len(prefix):].split(",")]
    table = columns[0].partition(".")[0]
    names = tuple(column.partition(".")[2] for column in columns)
    return _by_columns().get((table, names), "unique")


@functools.cache
def _by_columns() -> dict[tuple[str, tuple[str, ...]], str]:
    """(table, unique columns) -> the unique constraint's name, over every model (built once)."""
    from broker.db import Base

    metadata = Base.metadata
    found: dict[tuple[str, tuple[str, ...]], str] = {}
    for table in metadata.tables.values():
        uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
        uniques += [i for i in table.indexes if i.unique]
        for unique in uniques:
            found[(table.name, tuple(c.name for c in unique.columns))] = str(unique.name)
    return found
