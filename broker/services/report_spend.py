"""Report 3, subsidy spend (补贴资金使用): what the ledger moved in a period, by program × sector × carrier ×
firm size × month, the share of firms at their annual cap, and the leverage of the subsidy.

Every figure comes from the immutable ledger rows (`ledger_entries`), classified by the one rule that
derives balances from them (`broker.models.ledger.moves`), so the report's flows always add up to the
balances `broker.services.ledger.balances` derives:

- **committed**: `commit` rows (awards made);
- **released**: `reverse` rows of a commit (unused money going back to the budget: ended before use,
  period-end release, an upheld objection, the unused part of a clawed-back award);
- **redeemed**: `redeem` rows less the `reverse` rows of a redeem (a revoked award's usage);
- **written off** (核销): `write_off` rows less their reversals;
- **clawed back**: `adjust` rows on an award with reason `clawback`, as a positive sum (what the award
  had redeemed, taken back; the clawed-back award's unused part is in *released*);
- **adjusted**: the other `adjust` rows on an award (corrections, good faith), signed.

So, per group: committed balance moved = committed − released + adjusted − clawed back; redeemed
balance moved = redeemed + adjusted − clawed back; written-off balance moved = written off. Budget rows
(`deposit`, `adjust` without an award) are not spend and are left out.

The month is the row's, in Asia/Shanghai. The sector and the firm size are the startup's now
(headcount bands of 工信部联企业〔2011〕300号 for software and IT services, by headcount only: the
broker keeps no revenue). The carrier is the one that supplied the award's allocation.

**At cap**, per program and fiscal year the period touches: firms whose committed balance in that
fiscal year (derived from the rows by `ledger.balances`, as the cap check reads it) reached the
program's `cap_per_startup`, over the firms with any award of the program in that year.

**Leverage**: subsidy yuan per yuan of resources delivered = *redeemed* ÷ the gross value of the usage
those redemptions paid for (each usage report named by a `redeem` row of the period, counted once:
its quantity × its allocation's unit price, before any subsidy).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from broker.db import Money
from broker.models import (
    Account,
    Allocation,
    Award,
    Carrier,
    LedgerEntry,
    LedgerKind,
    Role,
    Sector,
    Startup,
    SubsidyProgram,
    UsageReport,
)
from broker.models.ledger import AdjustReason, moves
from broker.resources import QUANTITY_PLACES, UNIT_PRICE_PLACES
from broker.services import ledger
from broker.services.accounts import require_role
from broker.services.district_reports import _shanghai_month, shanghai_day_start

ZERO = Decimal("0.00")
FEN = Decimal("0.01")
FLOWS = ("committed", "redeemed", "written_off", "released", "clawed_back", "adjusted")
# Firm size by headcount (software and IT services, 工信部联企业〔2011〕300号): (code, fewest, most or None).
SIZE_BANDS = (("micro", 0, 9), ("small", 10, 99), ("medium", 100, 299), ("large", 300, None))


@dataclass(frozen=True)
class SpendFilters:
    start: dt.date
    end: dt.date  # inclusive
    program_id: int | None = None
    sector: Sector | None = None
    carrier_id: int | None = None
    size: str | None = None  # a code of SIZE_BANDS


@dataclass(frozen=True)
class SpendRow:
    key: str  # "total", a month, a program's code, a sector, a carrier's code, a size band, or "detail"
    name: str = ""  # the program's or carrier's name (empty for the others)
    program: str = ""
    sector: str = ""
    carrier: str = ""
    size: str = ""
    month: str = ""
    committed: Decimal = ZERO
    redeemed: Decimal = ZERO
    written_off: Decimal = ZERO
    released: Decimal = ZERO
    clawed_back: Decimal = ZERO
    adjusted: Decimal = ZERO
    usage_value: Decimal | None = None  # gross value of the delivered usage redeemed against (not in detail rows)

    @property
    def leverage(self) -> Decimal | None:
        """Subsidy yuan per yuan of resources delivered, to four places (None: no usage redeemed)."""
        if not self.usage_value:
            return None
        return (self.redeemed / self.usage_value).quantize(Decimal("0.0001"), ROUND_HALF_UP)


@dataclass(frozen=True)
class CapRow:
    program: str
    name: str
    fiscal_year: int
    cap: Decimal
    firms: int  # with any award of the program in the year
    at_cap: int

    @property
    def share(self) -> Decimal | None:
        """Percent of the firms at their cap, to two places."""
        return None if not self.firms else (Decimal(100) * self.at_cap / self.firms).quantize(FEN, ROUND_HALF_UP)


@dataclass(frozen=True)
class SpendReport:
    filters: SpendFilters
    total: SpendRow
    months: list[SpendRow] = field(default_factory=list)
    programs: list[SpendRow] = field(default_factory=list)
    sectors: list[SpendRow] = field(default_factory=list)
    carriers: list[SpendRow] = field(default_factory=list)
    sizes: list[SpendRow] = field(default_factory=list)
    detail: list[SpendRow] = field(default_factory=list)
    caps: list[CapRow] = field(default_factory=list)
    # What the filters may choose: (id, code, name) of every program and carrier.
    program_choices: list[tuple[int, str, str]] = field(default_factory=list)
    carrier_choices: list[tuple[int, str, str]] = field(default_factory=list)


def size_band(headcount: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """The size band's code of a headcount, in SQL."""
    return sa.case(*((headcount <= most, code) for code, _, most in SIZE_BANDS if most is not None),
                   else_=SIZE_BANDS[-1][0])


def _flow(kind: LedgerKind, target_kind: LedgerKind | None, on_award: bool, clawback: bool, total: Decimal) -> tuple[str, Decimal] | None:
    """Which column a group of rows adds to, and by how much: the balance it moves, by `moves` itself."""
    if kind is LedgerKind.deposit or (kind is LedgerKind.adjust and not on_award):
        return None  # budget, not spend
    changes = moves(kind, total, target_kind=target_kind, on_award=on_award)
    if kind is LedgerKind.commit:
        return "committed", changes["committed"]
    if kind is LedgerKind.reverse and target_kind is LedgerKind.commit:
        return "released", -changes["committed"]
    if kind is LedgerKind.adjust:
        return ("clawed_back", -changes["redeemed"]) if clawback else ("adjusted", changes["redeemed"])
    if kind is LedgerKind.write_off or target_kind is LedgerKind.write_off:
        return "written_off", changes["written_off"]
    return "redeemed", changes["redeemed"]  # redeem, or the reversal of one


def spend(session: Session, actor: Account, filters: SpendFilters) -> SpendReport:
    """Report 3: the ledger's flows by program × sector × carrier × size × month, firms at cap, leverage."""
    require_role(actor, Role.staff, Role.admin)
    size = size_band(Startup.headcount)
    month = _shanghai_month(session, LedgerEntry.created_at)

    def chosen(query: sa.Select) -> sa.Select:
        query = query.where(LedgerEntry.created_at >= shanghai_day_start(filters.start),
                            LedgerEntry.created_at < shanghai_day_start(filters.end + dt.timedelta(days=1)))
        if filters.program_id is not None:
            query = query.where(LedgerEntry.program_id == filters.program_id)
        if filters.sector is not None:
            query = query.where(Startup.sector == filters.sector)
        if filters.carrier_id is not None:
            query = query.where(LedgerEntry.carrier_id == filters.carrier_id)
        if filters.size is not None:
            query = query.where(size == filters.size)
        return query

    # The rows, grouped by the five dimensions and by what they move.
    target = aliased(LedgerEntry)
    clawback = sa.and_(LedgerEntry.kind == LedgerKind.adjust, LedgerEntry.reason == AdjustReason.clawback.value)
    dims = (SubsidyProgram.code, Startup.sector, Carrier.code, size, month)
    moved = chosen(
        sa.select(*dims, LedgerEntry.kind, target.kind, LedgerEntry.award_id.is_not(None), clawback,
                  sa.func.sum(LedgerEntry.amount, type_=Money()))
        .join(SubsidyProgram, SubsidyProgram.id == LedgerEntry.program_id)
        .join(Startup, Startup.id == LedgerEntry.startup_id)
        .join(Carrier, Carrier.id == LedgerEntry.carrier_id)
        .outerjoin(target, target.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.award_id.is_not(None))
        .group_by(*dims, LedgerEntry.kind, target.kind, LedgerEntry.award_id.is_not(None), clawback)
    )
    cells: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(FLOWS, ZERO))
    for program, sector, carrier, band, in_month, kind, target_kind, on_award, is_clawback, total in session.execute(moved):
        flow = _flow(kind, target_kind, bool(on_award), bool(is_clawback), total)
        if flow is not None:
            cells[(program, Sector(sector).value, carrier, band, in_month)][flow[0]] += flow[1]

    # The usage the period's redemptions paid for: once per usage report (per program for the program table).
    value = sa.type_coerce(UsageReport.quantity, sa.BigInteger) * sa.type_coerce(Allocation.unit_price, sa.BigInteger)
    paid_for = chosen(
        sa.select(UsageReport.id.label("usage_id"), LedgerEntry.program_id.label("program_id"),
                  Startup.sector.label("sector"), Carrier.code.label("carrier"), size.label("size"),
                  month.label("month"), value.label("value"))
        .join(UsageReport, UsageReport.id == LedgerEntry.usage_report_id)
        .join(Allocation, Allocation.id == UsageReport.allocation_id)
        .join(Startup, Startup.id == LedgerEntry.startup_id)
        .join(Carrier, Carrier.id == LedgerEntry.carrier_id)
        .where(LedgerEntry.kind == LedgerKind.redeem)
    ).distinct().subquery("paid_for")
    once = sa.select(paid_for.c.usage_id, paid_for.c.sector, paid_for.c.carrier, paid_for.c.size, paid_for.c.month,
                     paid_for.c.value).distinct().subquery("once")
    usage: dict[tuple, Decimal] = {
        (Sector(sector).value, carrier, band, in_month): _value(total) for sector, carrier, band, in_month, total in session.execute(
            sa.select(once.c.sector, once.c.carrier, once.c.size, once.c.month, sa.func.sum(once.c.value))
            .group_by(once.c.sector, once.c.carrier, once.c.size, once.c.month))
    }
    usage_by_program = {code: _value(total) for code, total in session.execute(
        sa.select(SubsidyProgram.code, sa.func.sum(paid_for.c.value))
        .join(paid_for, paid_for.c.program_id == SubsidyProgram.id).group_by(SubsidyProgram.code))}

    names = dict(session.execute(sa.select(SubsidyProgram.code, SubsidyProgram.name)).all())
    carrier_names = dict(session.execute(sa.select(Carrier.code, Carrier.name)).all())

    def rolled(position: int | None, usage_of: dict | None, usage_at: int | None) -> list[SpendRow]:
        sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(FLOWS, ZERO))
        for key, flows in cells.items():
            group = "total" if position is None else key[position]
            for name, amount in flows.items():
                sums[group][name] += amount
        values: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for key, amount in (usage_of or {}).items():
            values["total" if usage_at is None else key[usage_at]] += amount
        rows = []
        for group in sorted(set(sums) | set(values)):
            name = names.get(group, "") if position == 0 else carrier_names.get(group, "") if position == 2 else ""
            rows.append(SpendRow(group, name, **sums.get(group, dict.fromkeys(FLOWS, ZERO)), usage_value=values.get(group, ZERO)))
        return rows

    totals = rolled(None, usage, None)
    total = totals[0] if totals else SpendRow("total", usage_value=ZERO)
    detail = [
        SpendRow("detail", names.get(program, ""), program, sector, carrier, band, in_month, **flows)
        for (program, sector, carrier, band, in_month), flows in sorted(cells.items())
    ]
    return SpendReport(
        filters, total,
        months=rolled(4, usage, 3),
        programs=[replace(row, usage_value=usage_by_program.get(row.key, ZERO)) for row in rolled(0, None, None)],
        sectors=rolled(1, usage, 0), carriers=rolled(2, usage, 1),
        sizes=sorted(rolled(3, usage, 2), key=lambda row: [code for code, _, _ in SIZE_BANDS].index(row.key)),
        detail=detail, caps=_caps(session, filters),
        program_choices=[tuple(row) for row in session.execute(
            sa.select(SubsidyProgram.id, SubsidyProgram.code, SubsidyProgram.name).order_by(SubsidyProgram.code))],
        carrier_choices=[tuple(row) for row in session.execute(
            sa.select(Carrier.id, Carrier.code, Carrier.name).order_by(Carrier.code))],
    )


def _value(stored: int | Decimal | None) -> Decimal:
    """A sum of quantity × unit price as stored integers, in yuan to the fen."""
    return (Decimal(int(stored or 0)).scaleb(-(QUANTITY_PLACES + UNIT_PRICE_PLACES))).quantize(FEN, ROUND_HALF_UP)


def _caps(session: Session, filters: SpendFilters) -> list[CapRow]:
    """Per program and fiscal year the period touches: firms with an award, and those whose committed reached the cap."""
    programs = sa.select(SubsidyProgram).order_by(SubsidyProgram.code)
    if filters.program_id is not None:
        programs = programs.where(SubsidyProgram.id == filters.program_id)
    chosen = {program.id: program for program in session.scalars(programs)}
    years = range(filters.start.year, filters.end.year + 1)
    firms = {(program_id, year): int(n) for program_id, year, n in session.execute(
        sa.select(Award.program_id, Award.fiscal_year, sa.func.count(sa.distinct(Award.startup_id)))
        .where(Award.fiscal_year.in_(years), Award.program_id.in_(chosen))
        .group_by(Award.program_id, Award.fiscal_year))}
    rows = []
    for year in years:
        at_cap: dict[int, int] = defaultdict(int)
        for balance in ledger.balances(session, ("program", "startup"), fiscal_year=year, program_id=filters.program_id):
            program = chosen.get(balance.program_id)
            if program is not None and balance.startup_id is not None and balance.committed >= program.cap_per_startup:
                at_cap[program.id] += 1
        for program in chosen.values():
            if (program.id, year) in firms:
                rows.append(CapRow(program.code, program.name, year, program.cap_per_startup,
                                   firms[(program.id, year)], at_cap[program.id]))
    return rows
