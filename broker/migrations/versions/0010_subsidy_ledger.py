"""subsidy ledger: immutable ledger rows in fen, awards per allocation and program, program terms
(mode, claimant, rate rules, caps per allocation and per fiscal year, allotments, excluded kinds,
supplier lists, stack groups, paused), and today's commitments and program totals moved into the
ledger without losing a fen

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=max(map(len, values)))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


_KINDS = ("deposit", "commit", "redeem", "reverse", "adjust", "write_off")
_MODES = ("after", "instant", "allotment")
_CLAIMANTS = ("startup", "carrier")
_AWARD_STATUSES = ("committed", "released", "clawed_back")
_NOTICE_STATES = ("not_noticed", "in_notice", "final", "removed")
# Shanghai keeps UTC+8 all year (no daylight saving since 1991): written out here, not imported
# from broker.clock, so this revision never changes.
_SHANGHAI_OFFSET = dt.timedelta(hours=8)


def upgrade() -> None:
    op.create_table(
        "subsidy_stack_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("combined_cap", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("combined_cap > 0 AND combined_cap <= 10000", name=op.f("ck_subsidy_stack_groups_combined_cap_fraction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_stack_groups")),
        sa.UniqueConstraint("code", name=op.f("uq_subsidy_stack_groups_code")),
    )
    with op.batch_alter_table("subsidy_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=9), nullable=False, server_default="after"))
        batch_op.add_column(sa.Column("claimant", sa.String(length=7), nullable=False, server_default="startup"))
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_programmode"), _in("mode", _MODES))
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_claimant"), _in("claimant", _CLAIMANTS))
        batch_op.add_column(sa.Column("excluded_kinds", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("supplier_carrier_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("supplier_offer_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rate_rules", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("cap_per_allocation", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("allotment_per_startup", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("stack_group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("evidence_required", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        # Programs made before the ledger paid without a notice; new ones notice by default.
        batch_op.add_column(sa.Column("requires_notice", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("written_off", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.alter_column("kinds", existing_type=sa.JSON(), nullable=True)
        batch_op.create_foreign_key(batch_op.f("fk_subsidy_programs_stack_group_id_subsidy_stack_groups"),
                                    "subsidy_stack_groups", ["stack_group_id"], ["id"])
        # The per-startup cap is now per fiscal year (China's: the calendar year), not a rolling period.
        batch_op.drop_constraint(batch_op.f("ck_subsidy_programs_cap_period_range"), type_="check")
        batch_op.drop_column("cap_period_months")
        # A program may be opened before its first deposit; the budget is what the deposits say.
        batch_op.drop_constraint(batch_op.f("ck_subsidy_programs_amounts_positive"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_cap_positive"), "cap_per_startup > 0")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_budget_not_negative"), "budget >= 0")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_allocation_cap_positive"),
                                         "cap_per_allocation IS NULL OR cap_per_allocation > 0")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_written_off_not_negative"), "written_off >= 0")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_allotment_sized"),
                                         "mode <> 'allotment' OR allotment_per_startup > 0")
        batch_op.drop_constraint(batch_op.f("ck_subsidy_programs_programstatus"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_programstatus"),
                                         "status IN ('draft', 'open', 'paused', 'closed')")

    op.create_table(
        "subsidy_awards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("mode", _enum("programmode", *_MODES), nullable=False),
        sa.Column("claimant", _enum("claimant", *_CLAIMANTS), nullable=False),
        sa.Column("rate", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("committed", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("written_off", sa.BigInteger(), nullable=False),
        sa.Column("status", _enum("awardstatus", *_AWARD_STATUSES), nullable=False),
        sa.Column("evidence_complete", sa.Boolean(), nullable=False),
        sa.Column("notice_state", _enum("noticestate", *_NOTICE_STATES), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("amount > 0 AND quantity > 0", name=op.f("ck_subsidy_awards_amount_positive")),
        sa.CheckConstraint("committed >= 0", name=op.f("ck_subsidy_awards_committed_not_negative")),
        sa.CheckConstraint("redeemed >= 0 AND redeemed <= committed", name=op.f("ck_subsidy_awards_redeemed_within_committed")),
        sa.CheckConstraint("written_off >= 0", name=op.f("ck_subsidy_awards_written_off_not_negative")),
        sa.CheckConstraint("rate > 0 AND rate <= 10000", name=op.f("ck_subsidy_awards_rate_fraction")),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"], name=op.f("fk_subsidy_awards_allocation_id_allocations")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_subsidy_awards_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"], name=op.f("fk_subsidy_awards_program_id_subsidy_programs")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_subsidy_awards_startup_id_startups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_awards")),
        sa.UniqueConstraint("allocation_id", "program_id", name=op.f("uq_subsidy_awards_allocation_id_program_id")),
    )
    for column in ("program_id", "allocation_id", "startup_id", "carrier_id"):
        op.create_index(op.f(f"ix_subsidy_awards_{column}"), "subsidy_awards", [column], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("ledgerkind", *_KINDS), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=True),
        sa.Column("carrier_id", sa.Integer(), nullable=True),
        sa.Column("allocation_id", sa.Integer(), nullable=True),
        sa.Column("award_id", sa.Integer(), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("usage_report_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'adjust' AND amount <> 0 AND reason IS NOT NULL) OR (kind <> 'adjust' AND amount > 0)",
            name=op.f("ck_ledger_entries_amount_sign"),
        ),
        sa.CheckConstraint("kind <> 'reverse' OR reverses_id IS NOT NULL", name=op.f("ck_ledger_entries_reverse_links")),
        sa.CheckConstraint("kind <> 'deposit' OR reference IS NOT NULL", name=op.f("ck_ledger_entries_deposit_documented")),
        sa.CheckConstraint("kind NOT IN ('commit', 'redeem', 'write_off') OR award_id IS NOT NULL",
                           name=op.f("ck_ledger_entries_award_rows_name_award")),
        sa.CheckConstraint("fiscal_year BETWEEN 2000 AND 2200", name=op.f("ck_ledger_entries_fiscal_year_range")),
        sa.ForeignKeyConstraint(["actor_id"], ["accounts.id"], name=op.f("fk_ledger_entries_actor_id_accounts")),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"], name=op.f("fk_ledger_entries_allocation_id_allocations")),
        sa.ForeignKeyConstraint(["award_id"], ["subsidy_awards.id"], name=op.f("fk_ledger_entries_award_id_subsidy_awards")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_ledger_entries_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"], name=op.f("fk_ledger_entries_program_id_subsidy_programs")),
        sa.ForeignKeyConstraint(["reverses_id"], ["ledger_entries.id"], name=op.f("fk_ledger_entries_reverses_id_ledger_entries")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_ledger_entries_startup_id_startups")),
        sa.ForeignKeyConstraint(["usage_report_id"], ["usage_reports.id"], name=op.f("fk_ledger_entries_usage_report_id_usage_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_entries_idempotency_key")),
    )
    for column in ("program_id", "startup_id", "carrier_id", "allocation_id", "award_id", "reverses_id", "created_at"):
        op.create_index(op.f(f"ix_ledger_entries_{column}"), "ledger_entries", [column], unique=False)
    _make_ledger_append_only()
    _move_into_the_ledger()
    with op.batch_alter_table("subsidy_commitments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subsidy_commitments_startup_id"))
        batch_op.drop_index(batch_op.f("ix_subsidy_commitments_program_id"))
    op.drop_table("subsidy_commitments")


def _make_ledger_append_only() -> None:
    # The ledger is what an auditor follows: the database itself refuses to change or delete a row.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'ledger_entries is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
            "FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_entries_no_{event.lower()} BEFORE {event} ON ledger_entries "
                "BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END"
            )


def _year(moment: dt.datetime | str) -> int:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return (moment.replace(tzinfo=None) + _SHANGHAI_OFFSET).year


def _move_into_the_ledger() -> None:
    """Each program's budget becomes an opening deposit; each commitment an award with its commit
    row, one redeem row for what usage redeemed, and a reverse row for what went back. The program
    totals, and every award's, are then exactly what the rows say."""
    connection = op.get_bind()
    entries = sa.table(
        "ledger_entries", *(sa.column(c) for c in (
            "kind", "amount", "program_id", "startup_id", "carrier_id", "allocation_id", "award_id", "reverses_id",
            "reason", "note", "reference", "fiscal_year", "idempotency_key", "created_at")),
    )
    awards = sa.table("subsidy_awards", *(sa.column(c) for c in (
        "id", "program_id", "allocation_id", "startup_id", "carrier_id", "fiscal_year", "mode", "claimant", "rate",
        "quantity", "gross", "amount", "committed", "redeemed", "written_off", "status", "evidence_complete",
        "notice_state", "created_at", "closed_at")))

    def add_entry(**values) -> int:
        return connection.execute(entries.insert().values(**values).returning(sa.literal_column("id"))).scalar_one()

    for program_id, budget, created_at in connection.execute(sa.text("SELECT id, budget, created_at FROM subsidy_programs ORDER BY id")).all():
        if budget > 0:
            add_entry(kind="deposit", amount=budget, program_id=program_id, reference="迁移：期初预算 (opening budget)",
                      note="moved into the ledger by migration 0010", fiscal_year=_year(created_at),
                      idempotency_key=f"migrate:deposit:program:{program_id}", created_at=created_at)
    commitments = connection.execute(sa.text(
        "SELECT c.id, c.program_id, c.allocation_id, c.startup_id, c.amount, c.redeemed, c.released, c.released_at, "
        "c.created_at, o.carrier_id, a.quantity, a.unit_price, p.rate "
        "FROM subsidy_commitments c JOIN allocations a ON a.id = c.allocation_id JOIN offers o ON o.id = a.offer_id "
        "JOIN subsidy_programs p ON p.id = c.program_id ORDER BY c.id"
    )).all()
    for (cid, program_id, allocation_id, startup_id, amount, redeemed, released, released_at, created_at,
         carrier_id, quantity, unit_price, rate) in commitments:
        year = _year(created_at)
        # quantity has 3 places, unit_price 4, money 2: the cost in fen is quantity * unit_price / 10^5
        gross = max(round(quantity * unit_price / 100_000), amount)
        connection.execute(awards.insert().values(
            id=cid, program_id=program_id, allocation_id=allocation_id, startup_id=startup_id, carrier_id=carrier_id,
            fiscal_year=year, mode="after", claimant="startup", rate=rate, quantity=quantity, gross=gross, amount=amount,
            committed=amount - released, redeemed=redeemed, written_off=0,
            status="released" if released_at is not None else "committed", created_at=created_at, closed_at=released_at,
            # Before the ledger no program asked for evidence or a notice.
            evidence_complete=True, notice_state="not_noticed",
        ))
        common = {"program_id": program_id, "startup_id": startup_id, "carrier_id": carrier_id,
                  "allocation_id": allocation_id, "award_id": cid, "fiscal_year": year}
        commit_id = add_entry(kind="commit", amount=amount, idempotency_key=f"commit:allocation:{allocation_id}:program:{program_id}",
                              created_at=created_at, **common)
        if redeemed > 0:
            add_entry(kind="redeem", amount=redeemed, idempotency_key=f"migrate:redeem:award:{cid}",
                      note="usage redeemed before the ledger, moved by migration 0010", created_at=released_at or created_at, **common)
        if released > 0:
            add_entry(kind="reverse", amount=released, reverses_id=commit_id, reason="ended_before_use",
                      idempotency_key=f"release:award:{cid}", created_at=released_at or created_at, **common)
    if connection.dialect.name == "postgresql" and commitments:
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('subsidy_awards', 'id'), (SELECT max(id) FROM subsidy_awards))"))


def downgrade() -> None:
    connection = op.get_bind()
    stacked = connection.execute(sa.text(
        "SELECT allocation_id FROM subsidy_awards GROUP BY allocation_id HAVING count(*) > 1 LIMIT 1")).first()
    if stacked is not None:
        raise RuntimeError(f"allocation {stacked[0]} has awards from several programs; before 0010 it could have one")
    op.create_table(
        "subsidy_commitments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("released", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("written_off_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_subsidy_commitments_amount_positive")),
        sa.CheckConstraint("redeemed >= 0 AND redeemed <= amount", name=op.f("ck_subsidy_commitments_redeemed_within_amount")),
        sa.CheckConstraint("released >= 0 AND redeemed + released <= amount", name=op.f("ck_subsidy_commitments_released_within_amount")),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"], name=op.f("fk_subsidy_commitments_allocation_id_allocations")),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"], name=op.f("fk_subsidy_commitments_program_id_subsidy_programs")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_subsidy_commitments_startup_id_startups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_commitments")),
        sa.UniqueConstraint("allocation_id", name=op.f("uq_subsidy_commitments_allocation_id")),
    )
    op.create_index(op.f("ix_subsidy_commitments_program_id"), "subsidy_commitments", ["program_id"], unique=False)
    op.create_index(op.f("ix_subsidy_commitments_startup_id"), "subsidy_commitments", ["startup_id"], unique=False)
    connection.execute(sa.text(
        "INSERT INTO subsidy_commitments (id, program_id, allocation_id, startup_id, amount, redeemed, released, "
        "released_at, written_off_at, created_at) SELECT id, program_id, allocation_id, startup_id, amount, redeemed, "
        "amount - committed, closed_at, NULL, created_at FROM subsidy_awards"
    ))
    op.drop_table("ledger_entries")
    if connection.dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_entries_append_only()")
    op.drop_table("subsidy_awards")
    with op.batch_alter_table("subsidy_programs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_subsidy_programs_programstatus"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_programstatus"), "status IN ('draft', 'open', 'closed')")
        for name in ("allotment_sized", "written_off_not_negative", "allocation_cap_positive", "budget_not_negative", "cap_positive"):
            batch_op.drop_constraint(batch_op.f(f"ck_subsidy_programs_{name}"), type_="check")
        batch_op.add_column(sa.Column("cap_period_months", sa.Integer(), nullable=False, server_default="12"))
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_cap_period_range"), "cap_period_months BETWEEN 1 AND 120")
        batch_op.create_check_constraint(batch_op.f("ck_subsidy_programs_amounts_positive"), "budget > 0 AND cap_per_startup > 0")
        batch_op.drop_constraint(batch_op.f("fk_subsidy_programs_stack_group_id_subsidy_stack_groups"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("ck_subsidy_programs_programmode"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_subsidy_programs_claimant"), type_="check")
        for column in ("written_off", "requires_notice", "evidence_required", "stack_group_id", "allotment_per_startup", "cap_per_allocation", "rate_rules",
                       "supplier_offer_ids", "supplier_carrier_ids", "excluded_kinds", "claimant", "mode"):
            batch_op.drop_column(column)
        batch_op.alter_column("kinds", existing_type=sa.JSON(), nullable=False)
    op.drop_table("subsidy_stack_groups")
