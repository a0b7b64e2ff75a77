"""`broker bench district`: a whole district of made-up data, for the console's page-speed benchmark.

Not a test and not the demo: it fills an EMPTY migrated database (PostgreSQL; SQLite only at
small sizes) with 10,000 startups, 100,000 requests and 1,000,000 allocations by default, as
the services would have left them after a year of weekly cycles:

- three carriers with offers of all six kinds; an offer's `promised` is exactly what its
  proposed, approved, provisioning and active allocations hold, and never more than its quantity;
- startups across every sector with Chinese names and valid credit codes (GB 32100-2015),
  about 10% key enterprises and 5% still pending, each with its account and legal representative;
- requests in every state, each with allocations that agree with it (a completed request's
  allocations were released, a proposed one's wait in the latest cycle, and so on);
- weekly cycles with their stats (the requests each left short), the latest awaiting decisions;
- subsidy programs whose awards and ledger rows (deposits, commits, redemptions, write-offs,
  reversals) give exactly the totals cached on programs and awards: `broker ledger reconcile` passes;
- public notices (公示) of the awards of programs that require one: every award a written-off row
  made final sits in a final notice (at most `MAX_BATCH` awards each, over two weeks of awards),
  and three notices still open hold recent committed awards (in_notice), with open and answered
  objections;
- settlement statements (结算单) per program, quarterly or monthly, built and approved through the
  settlement service itself after the bulk load (so their lines are what `build_statement` makes,
  and the write-off rows of the written-off ones keep `broker ledger reconcile` passing): the older
  periods written off, the next approved once (four eyes), the latest drafts;
- appeals, events, audit entries, carrier syncs with quarantined records, policy versions, and a
  staff person whose password it prints.

Rows are written with PostgreSQL's COPY (SQLAlchemy Core executemany on SQLite) in chunks, with
ids chosen here, in a few transactions; the sequences are moved past them at the end. Rows are
made in the columns' Python types and put through each column's own bind processing, so a
quantity is stored in thousandths and a time as naive UTC exactly as the models store them.
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa

from broker.clock import SHANGHAI, local_date
from broker.models.notices import MAX_BATCH
from broker.uscc import check_character
from broker.workdays import add_working_days

STAFF_EMAIL = "bench.staff@changning.example.gov.cn"
STAFF_PASSWORD = "长宁区硅巷-页面测速-2026"
SQLITE_MAX_ALLOCATIONS = 20_000  # beyond this SQLite is not what the benchmark measures
CHUNK = 10_000

CARRIERS = (("telecom_sh", "中国电信上海公司", "telecom"), ("unicom_sh", "中国联通上海分公司", "unicom"),
            ("cloud_cn", "长宁云计算中心", "telecom"))
REGIONS = ("cn-east-sh", "cn-east-sh2", "cn-north-bj", "cn-south-gz")
SECTORS = ("smart_driving", "energy_management", "smart_healthcare", "ai_models", "industrial_software", "fintech",
           "digital_culture", "ecommerce", "life_sciences", "other")
SECTOR_WORDS = {"smart_driving": "智能驾驶", "energy_management": "能源管理", "smart_healthcare": "智慧医疗",
                "ai_models": "人工智能", "industrial_software": "工业软件", "fintech": "金融科技",
                "digital_culture": "数字文创", "ecommerce": "电子商务", "life_sciences": "生命科学", "other": "信息技术"}
NAME_HEADS = ("驭", "能", "瑞", "深", "金", "云", "星", "智", "启", "博", "睿", "华", "海", "鼎", "天", "新", "宏", "光",
              "澜", "越", "曜", "衡", "泽", "晟", "弘", "锦", "致", "远", "腾", "思")
NAME_TAILS = ("光", "衡", "康", "言", "链", "途", "河", "元", "航", "览", "程", "辰", "川", "盛", "策", "维", "图", "峰",
              "域", "迅", "擎", "数", "芯", "创", "拓", "合", "源", "帆", "境", "联")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "霞", "平", "刚")
# Per kind: (unit price range in yuan, an allocation's quantity range, attributes an offer carries).
KIND_TERMS: dict[str, tuple[tuple[float, float], tuple[int, int], list[dict[str, Any]]]] = {
    "gpu": ((6.0, 18.0), (20, 400), [{"gpu_model": "910B", "gpu_memory_gb": 64}, {"gpu_model": "H800", "gpu_memory_gb": 80}]),
    "cpu": ((0.05, 0.3), (500, 20_000), [{"arch": "x86_64"}, {"arch": "aarch64"}]),
    "data_line": ((80.0, 300.0), (10, 100), [{"a_end": "长宁", "z_end": "临港", "cross_border": "no"},
                                              {"a_end": "长宁", "z_end": "香港", "cross_border": "yes"}]),
    "cloud_vm": ((40.0, 120.0), (4, 64), [{"flavor": "c7.large", "os": "ubuntu"}, {"flavor": "g7.xlarge", "os": "euleros"}]),
    "storage": ((20.0, 90.0), (1, 40), [{"tier": "standard"}, {"tier": "ssd"}]),
    "tokens": ((1.0, 12.0), (50, 2_000), [{"model": "deepseek-v3"}, {"model": "qwen-max"}]),
}
KIND_SHARE = {"gpu": 30, "cpu": 15, "data_line": 5, "cloud_vm": 15, "storage": 10, "tokens": 25}
# What became of requests (a share of them), and how their allocations end.
FATES = {"submitted": 6, "proposed": 2, "approved": 5, "active": 20, "completed": 37, "rejected": 10, "expired": 12,
         "withdrawn": 8}
AWARDED_EVERY = 6
HELD = frozenset({"proposed", "approved", "provisioning", "active"})  # what an offer's `promised` counts
GRANTED = frozenset({"approved", "provisioning", "active", "released", "cancelled"})  # approved once: awarded
PROGRAMS = (
    # code, name, kinds, rate, mode, claimant
    ("MODEL_TOKENS_2026", "模型券（Tokens专项补贴）", ["tokens"], Decimal("0.3"), "after", "startup"),
    ("COMPUTE_2026", "算力券", ["gpu", "cpu"], Decimal("0.4"), "after", "carrier"),
    ("CLOUD_2026", "云服务券", ["cloud_vm", "storage"], Decimal("0.2"), "instant", "startup"),
    ("DATALINE_2026", "数据专线补贴", ["data_line"], Decimal("0.5"), "after", "startup"),
)
NOTICE_SPAN = dt.timedelta(days=14)  # a final notice freezes the awards of at most two weeks
OBJECTORS = (("匿名", "13900000000"), ("张先生", "zhang@example.cn"), ("上海某科技公司", "021-62000000"),
             ("李女士", "li.nvshi@example.cn"))
OBJECTION_TEXTS = ("该企业实际未在本区经营，申请补贴资格存疑。", "公示金额与企业实际使用量不符，请核实。",
                   "该企业与资源提供方存在关联关系，请复核。", "对本批公示名单整体的评审程序有疑问。")
# Settlement: programs settled by quarter and by month; the periods before the latest (oldest
# first) are written off, the one after them approved once, the latest a draft.
SETTLED_BY_QUARTER = frozenset({"MODEL_TOKENS_2026", "COMPUTE_2026"})
STATEMENT_FATES = ("written_off", "written_off", "approved_once", "draft")


def make_uscc(n: int) -> str:
    """A valid 统一社会信用代码 for company number `n` (91 + Changning's division code + n)."""
    body = f"91310105{n:09d}"
    return body + check_character(body)


@dataclass
class Counts:
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, table: str, n: int) -> None:
        self.rows[table] += n


class Writer:
    """Bulk rows into one table at a time: COPY on PostgreSQL, Core executemany elsewhere."""

    def __init__(self, connection: sa.Connection, counts: Counts, echo: Any) -> None:
        self.connection = connection
        self.counts = counts
        self.echo = echo
        self.postgres = connection.dialect.name == "postgresql"

    def write(self, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
        total = 0
        for chunk in _chunks(rows, CHUNK):
            if self.postgres:
                self._copy(table, chunk)
            else:
                self.connection.execute(table.insert(), chunk)
            total += len(chunk)
        self.counts.add(table.name, total)
        return total

    def _copy(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        names = list(rows[0])
        dialect = self.connection.dialect
        processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
        cursor = self.connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([process(row[n]) if process else row[n] for n, process in zip(names, processors)])
        cursor.close()


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


@dataclass
class Plan:
    """Everything decided before writing: ids are assigned here, counted from 1."""

    now: dt.datetime
    startups: int
    requests: int
    allocations: int
    cycles: int
    rng: random.Random


class District:
    """Builds the rows of a district table by table, keeping what later tables must agree with."""

    def __init__(self, plan: Plan, writer: Writer) -> None:
        self.p = plan
        self.w = writer
        self.rng = plan.rng
        self.now = plan.now
        self.meta = _tables()
        self.staff_account_id = 0
        self.audit_id = 0
        self.event_id = 0

    # -- parties ---------------------------------------------------------------------------

    def parties(self) -> None:
        t = self.meta
        created = self.now - dt.timedelta(days=400)
        self.w.write(t["carriers"], ({"id": i, "code": code, "name": name, "adapter": adapter, "active": True,
                                      "uscc": make_uscc(900_000_000 + i), "created_at": created}
                                     for i, (code, name, adapter) in enumerate(CARRIERS, start=1)))
        # Accounts: 1..3 the carriers', 4..13 district staff, then one per startup.
        accounts = [{"id": i, "role": "carrier", "name": name, "carrier_id": i, "startup_id": None, "created_at": created}
                    for i, (_code, name, _a) in enumerate(CARRIERS, start=1)]
        self.staff_ids = list(range(4, 14))
        accounts += [{"id": i, "role": "staff" if i > 4 else "admin", "name": self._person_name(), "carrier_id": None,
                      "startup_id": None, "created_at": created} for i in self.staff_ids]
        self.w.write(t["accounts"], accounts)
        self.startup_rows = [self._startup(i) for i in range(1, self.p.startups + 1)]
        self.w.write(t["startups"], self.startup_rows)
        self.first_startup_account = 14
        self.w.write(t["accounts"], ({"id": self.first_startup_account + s["id"] - 1, "role": "startup", "name": s["name"],
                                      "carrier_id": None, "startup_id": s["id"], "created_at": s["created_at"]}
                                     for s in self.startup_rows))
        self.verified = [s for s in self.startup_rows if s["status"] == "verified"]
        self.w.echo(f"  {len(self.startup_rows):,} startups ({len(self.verified):,} verified), 3 carriers")

    def _person_name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choices(GIVEN, k=self.rng.randint(1, 2)))

    def _startup(self, i: int) -> dict[str, Any]:
        rng = self.rng
        sector = SECTORS[rng.randrange(len(SECTORS))]
        name = f"上海{rng.choice(NAME_HEADS)}{rng.choice(NAME_TAILS)}{SECTOR_WORDS[sector]}科技有限公司"
        created = self.now - dt.timedelta(days=rng.uniform(5, 390))
        roll = rng.random()
        status = "pending" if roll < 0.05 else "suspended" if roll < 0.06 else "rejected" if roll < 0.065 else "verified"
        reviewed = created + dt.timedelta(days=rng.uniform(0.5, 4)) if status != "pending" else None
        return {
            "id": i, "name": name, "uscc": make_uscc(i), "sector": sector,
            "founded_on": (created - dt.timedelta(days=rng.randint(100, 3000))).date(),
            "headcount": rng.randint(3, 400), "contact_name": self._person_name(),
            "contact_email": f"contact{i}@startup{i}.example.cn", "contact_phone": f"1380000{i % 10000:04d}",
            "registered_in_district": rng.random() < 0.9, "key_enterprise": rng.random() < 0.1,
            "cycle_budget": Decimal(rng.choice((50_000, 200_000, 1_000_000))) if rng.random() < 0.3 else None,
            "affiliated_carrier_id": None, "status": status, "created_at": created,
            "verified_at": reviewed if status in ("verified", "suspended") else None,
            "reviewed_by_id": self.staff_ids[i % len(self.staff_ids)] if reviewed else None, "reviewed_at": reviewed,
            "rejection_reason": "营业执照与申报信息不符" if status == "rejected" else None,
        }

    def people(self) -> None:
        """Each startup's legal representative (they sign in through the unified login: no password)."""
        self.w.write(self.meta["people"], ({
            "id": n, "name": s["contact_name"], "email": s["contact_email"], "email_key": s["contact_email"],
            "password_hash": None, "password_changed_at": None, "account_id": self.first_startup_account + s["id"] - 1,
            "side": "startup", "company_role": "legal_representative", "scopes": None, "agent_expires_at": None,
            "status": "active", "failed_sign_ins": 0, "locked_until": None, "last_sign_in_at": None,
            "oidc_linked_at": s["created_at"], "created_at": s["created_at"], "deactivated_at": None,
        } for n, s in enumerate(self.startup_rows, start=1)))

    # -- the market --------------------------------------------------------------------------

    def cycles(self) -> None:
        """Weekly cycles, the newest awaiting decisions; one early one failed."""
        n = self.p.cycles
        self.cycle_times = []
        for i in range(1, n + 1):
            self.cycle_times.append(self.now - dt.timedelta(weeks=n - i, hours=-2 if i == n else 0) - dt.timedelta(days=1))
        self.failed_cycle = 3 if n > 5 else None
        self.live_cycle = n
        self.cycle_requests: dict[int, set[int]] = defaultdict(set)
        self.cycle_unfilled: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def offers(self) -> None:
        per_kind = max(2, min(40, self.p.allocations // 25_000))
        self.offer_rows: list[dict[str, Any]] = []
        self.offers_by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        start = (self.now - dt.timedelta(days=400)).date()
        for carrier_id in range(1, len(CARRIERS) + 1):
            for kind, ((low, high), _q, attributes) in KIND_TERMS.items():
                for j in range(per_kind):
                    list_price = Decimal(str(round(self.rng.uniform(low, high), 2)))
                    offer = {
                        "id": len(self.offer_rows) + 1, "carrier_id": carrier_id, "external_id": f"{kind}-{carrier_id}-{j:04d}",
                        "kind": kind, "region": REGIONS[j % len(REGIONS)], "attributes": attributes[j % len(attributes)],
                        "quantity": Decimal(0), "promised": Decimal(0), "window_start": start,
                        "window_end": start + dt.timedelta(days=800), "list_price": list_price,
                        "unit_price": _money(list_price * Decimal("0.85")), "divisible": kind != "data_line",
                        "status": "active", "channel": "pull", "withdrawn_by": None,
                        "created_at": self.now - dt.timedelta(days=400), "updated_at": self.now - dt.timedelta(days=1),
                    }
                    self.offer_rows.append(offer)
                    self.offers_by_kind[kind].append(offer)

    def requests_and_allocations(self) -> None:
        """Requests with the allocations that agree with them; offers' promised follow."""
        rng, n = self.rng, self.p.requests
        kinds = list(KIND_SHARE)
        weights = list(KIND_SHARE.values())
        fates = rng.choices(list(FATES), weights=list(FATES.values()), k=n)
        with_allocations = [i for i, f in enumerate(fates) if f != "submitted"]
        # Allocations shared out over the requests that have any: the average, ±, summing exactly.
        per = [0] * n
        base, extra = divmod(self.p.allocations, max(len(with_allocations), 1))
        for rank, i in enumerate(with_allocations):
            per[i] = base + (1 if rank < extra else 0)
        for a, b in zip(with_allocations[::2], with_allocations[1::2]):
            shift = rng.randint(0, max(per[b] - 1, 0))
            per[a], per[b] = per[a] + shift, per[b] - shift
        closed = [c for c in range(1, self.p.cycles) if c != self.failed_cycle]
        requests: list[dict[str, Any]] = []
        allocations: list[dict[str, Any]] = []
        for i in range(n):
            startup = self.verified[rng.randrange(len(self.verified))]
            kind = rng.choices(kinds, weights=weights)[0]
            fate = fates[i]
            count = per[i]
            offers = self.offers_by_kind[kind]
            # Which cycles it went through: the last one decides its state; earlier ones lapsed or were rejected.
            if fate == "submitted":
                cycles: list[int] = []
            elif fate == "proposed":
                cycles = [closed[-1], self.live_cycle] if rng.random() < 0.3 else [self.live_cycle]
            else:
                pool = closed[-4:] if fate == "approved" else closed[-16:] if fate == "active" else closed
                last = pool[rng.randrange(len(pool))]
                earlier = [c for c in closed if c < last][-rng.randint(1, 2):] if rng.random() < 0.3 else []
                cycles = [*earlier, last]
            first_time = self.cycle_times[cycles[0] - 1] if cycles else self.now - dt.timedelta(days=rng.uniform(0, 6))
            submitted = first_time - dt.timedelta(days=rng.uniform(0.5, 6))
            request_id = i + 1
            chunk_low, chunk_high = KIND_TERMS[kind][1]
            # How the count splits over its cycles (each cycle's offers distinct): at least one per cycle.
            split = _split(count, len(cycles), len(offers), rng) if cycles else []
            cycles = cycles[len(cycles) - len(split):]
            final = split[-1] if split else 1
            unit = Decimal(rng.randint(chunk_low, chunk_high))
            quantity = unit * final
            window_start = submitted.date() + dt.timedelta(days=rng.randint(7, 20))
            status = fate
            requests.append({
                "id": request_id, "startup_id": startup["id"], "kind": kind, "quantity": quantity,
                "min_quantity": unit if rng.random() < 0.3 else None,
                "regions": None if rng.random() < 0.6 else [REGIONS[rng.randrange(2)]],
                "attributes": {}, "window_start": window_start, "window_end": window_start + dt.timedelta(days=rng.choice((30, 60, 90, 180))),
                "max_unit_price": None, "purpose": "模型训练与推理服务", "status": status,
                "cycles_waited": len(cycles) - 1 if cycles else rng.randint(0, 2), "submitted_at": submitted,
                "updated_at": self.cycle_times[cycles[-1] - 1] if cycles else submitted,
            })
            for position, (cycle_id, m) in enumerate(zip(cycles, split)):
                last = position == len(cycles) - 1
                chosen = rng.sample(offers, m)
                for offer in chosen:
                    allocation = self._allocation(len(allocations) + 1, cycle_id, request_id, offer, unit,
                                                  self._allocation_status(fate, last))
                    allocations.append(allocation)
                    if allocation["status"] in HELD:
                        offer["promised"] += allocation["quantity"]
                self.cycle_requests[cycle_id].add(request_id)
                # Left short in this cycle: half of those it went on from, some of those it ended in.
                if rng.random() < (0.5 if not last or fate in ("rejected", "expired") else 0.15):
                    self.cycle_unfilled[cycle_id].append(
                        {"request_id": request_id, "reason": rng.choice(("capacity_taken", "share_cap", "capacity_held",
                                                                         "capacity_short", "budget", "region"))})
        for offer in self.offer_rows:
            spare = Decimal(self.rng.randint(1, 50) * KIND_TERMS[offer["kind"]][1][1])
            offer["quantity"] = offer["promised"] + spare
            if self.rng.random() < 0.05:  # a carrier took it off the market, keeping what was promised
                offer.update(status="withdrawn", withdrawn_by="carrier", quantity=offer["promised"])
        self.w.write(self.meta["offers"], self.offer_rows)
        self.w.write(self.meta["resource_requests"], requests)
        self.w.echo(f"  {len(self.offer_rows):,} offers, {len(requests):,} requests")
        self.request_rows = requests
        self.allocation_rows = allocations

    def _allocation_status(self, fate: str, last: bool) -> str:
        rng = self.rng
        if not last:
            return "lapsed" if rng.random() < 0.6 else "rejected"
        return {
            "proposed": "proposed",
            "approved": "approved" if rng.random() < 0.7 else "provisioning",
            "active": "active" if rng.random() < 0.8 else "released",
            "completed": "released",
            "rejected": "rejected",
            "expired": "lapsed",
            "withdrawn": "cancelled" if rng.random() < 0.5 else "released",
        }[fate]

    def _allocation(self, allocation_id: int, cycle_id: int, request_id: int, offer: dict[str, Any], unit: Decimal,
                    status: str) -> dict[str, Any]:
        rng = self.rng
        proposed_at = self.cycle_times[cycle_id - 1]
        decided = status not in ("proposed",)
        decided_at = proposed_at + dt.timedelta(hours=rng.uniform(2, 40)) if decided else None
        by_staff = status not in ("proposed", "lapsed")
        reason = {"rejected": "资源与需求用途不符", "lapsed": "no decision before the approval deadline",
                  "cancelled": "企业撤回需求"}.get(status)
        provisioning = status == "provisioning"
        given_up = provisioning and rng.random() < 0.2
        return {
            "id": allocation_id, "cycle_id": cycle_id, "request_id": request_id, "offer_id": offer["id"],
            "quantity": unit, "unit_price": offer["unit_price"], "status": status,
            "decided_by_id": self.staff_ids[allocation_id % len(self.staff_ids)] if by_staff else None,
            "decided_at": decided_at, "decision_reason": reason,
            "carrier_ref": f"{offer['external_id']}-R{allocation_id}" if status in ("active", "released") else None,
            "provision_attempts": rng.randint(1, 5) if status in ("provisioning", "active", "released") else 0,
            "next_attempt_at": None if given_up or not provisioning else self.now + dt.timedelta(minutes=rng.randint(1, 60)),
            "last_error": "运营商接口超时" if given_up else None,
            "released_at": decided_at + dt.timedelta(days=rng.randint(7, 60)) if status in ("released", "cancelled") else None,
            "created_at": proposed_at, "updated_at": decided_at or proposed_at,
        }

    def write_cycles(self) -> None:
        rows = []
        for i, at in enumerate(self.cycle_times, start=1):
            served = self.cycle_requests.get(i, set())
            unfilled = sorted(self.cycle_unfilled.get(i, []), key=lambda u: u["request_id"])
            failed = i == self.failed_cycle
            status = "failed" if failed else "proposed" if i == self.live_cycle else "closed"
            rows.append({
                "id": i, "status": status, "scheduled_for": at, "started_at": at,
                "finished_at": at + dt.timedelta(seconds=self.rng.randint(20, 300)),
                "approval_deadline": None if failed else at + dt.timedelta(hours=72),
                "started_by_id": None,
                "stats": {} if failed else {
                    "requests": len(served) + len(unfilled) // 3, "offers": len(self.offer_rows),
                    "proposals": self.proposals_per_cycle.get(i, 0), "requests_served": len(served),
                    "objective": round(self.rng.uniform(800, 5000), 6), "bound": round(self.rng.uniform(5000, 5200), 6),
                    "gap": round(self.rng.uniform(0.001, 0.03), 4), "solve_seconds": round(self.rng.uniform(5, 60), 2),
                    "fulfilment_by_kind": {k: round(self.rng.uniform(0.4, 1.0), 4) for k in KIND_TERMS},
                    "fulfilment_by_sector": {s: round(self.rng.uniform(0.4, 1.0), 4) for s in SECTORS},
                    "unfilled": unfilled,
                },
                "error": "求解器超时" if failed else None,
            })
        self.w.write(self.meta["matching_cycles"], rows)

    def write_allocations(self) -> None:
        self.proposals_per_cycle: dict[int, int] = defaultdict(int)
        for a in self.allocation_rows:
            self.proposals_per_cycle[a["cycle_id"]] += 1
        self.write_cycles()
        self.w.write(self.meta["allocations"], self.allocation_rows)
        self.w.echo(f"  {len(self.allocation_rows):,} allocations over {self.p.cycles} cycles")

    # -- subsidies ---------------------------------------------------------------------------

    def subsidies(self) -> None:
        """Programs, their awards on approved allocations, and ledger rows that add up to every cache."""
        t, rng = self.meta, self.rng
        year = self.now.year
        program_of_kind = {}
        programs = []
        for pid, (code, name, kinds, rate, mode, claimant) in enumerate(PROGRAMS, start=1):
            for kind in kinds:
                program_of_kind[kind] = pid
            programs.append({
                "id": pid, "code": code, "name": name, "mode": mode, "claimant": claimant, "kinds": kinds,
                "excluded_kinds": [], "supplier_carrier_ids": None, "supplier_offer_ids": None, "rate": rate,
                "rate_rules": [], "cap_per_startup": Decimal(5_000_000), "cap_per_allocation": None,
                "allotment_per_startup": None, "evidence_required": ["invoice"] if mode == "after" else [],
                "requires_notice": mode == "after", "stack_group_id": None, "budget": Decimal(0),
                "committed": Decimal(0), "redeemed": Decimal(0), "written_off": Decimal(0), "eligible_sectors": None,
                "require_in_district": False, "max_company_age_years": None, "max_headcount": None,
                "exclude_carrier_affiliates": True, "excludes_subsidy_levels": [], "excludes_subsidy_kinds": None,
                "starts_on": dt.date(year - 1, 1, 1), "ends_on": dt.date(year + 1, 1, 1), "status": "open",
                "created_at": self.now - dt.timedelta(days=390),
            })
        offers = {o["id"]: o for o in self.offer_rows}
        requests = self.request_rows
        awards, entries = [], []
        self.redemptions: list[tuple[dict[str, Any], Decimal]] = []
        totals = {p["id"]: defaultdict(Decimal) for p in programs}

        def entry(kind: str, amount: Decimal, program_id: int, at: dt.datetime, award: dict | None = None, **more: Any) -> dict:
            row = {"id": len(entries) + 1, "kind": kind, "amount": amount, "program_id": program_id,
                   "startup_id": award["startup_id"] if award else None, "carrier_id": award["carrier_id"] if award else None,
                   "allocation_id": award["allocation_id"] if award else None, "award_id": award["id"] if award else None,
                   "reverses_id": None, "usage_report_id": None, "reason": None, "note": None, "reference": None,
                   "fiscal_year": award["fiscal_year"] if award else at.year, "actor_id": None,
                   "idempotency_key": f"bench:{kind}:{len(entries) + 1}", "created_at": at}
            row.update(more)
            entries.append(row)
            return row

        for a in self.allocation_rows:
            # Startups claim a subsidy on about one granted allocation in AWARDED_EVERY.
            if a["status"] not in GRANTED or a["id"] % AWARDED_EVERY:
                continue
            offer = offers[a["offer_id"]]
            pid = program_of_kind[offer["kind"]]
            program = programs[pid - 1]
            gross = _money(a["quantity"] * a["unit_price"])
            amount = _money(gross * program["rate"])
            if amount <= 0:
                continue
            at = a["decided_at"]
            award = {"id": len(awards) + 1, "program_id": pid, "allocation_id": a["id"],
                     "startup_id": requests[a["request_id"] - 1]["startup_id"], "carrier_id": offer["carrier_id"],
                     "fiscal_year": at.year, "mode": program["mode"], "claimant": program["claimant"],
                     "rate": program["rate"], "quantity": a["quantity"], "gross": gross, "amount": amount,
                     "committed": amount, "redeemed": Decimal(0), "written_off": Decimal(0), "status": "committed",
                     "evidence_complete": a["status"] == "released", "notice_state": "not_noticed",
                     "created_at": at, "closed_at": None}
            awards.append(award)
            commit = entry("commit", amount, pid, at, award, actor_id=a["decided_by_id"])
            if a["status"] == "cancelled":  # its commitment went back when it was cancelled
                entry("reverse", amount, pid, a["released_at"], award, reverses_id=commit["id"], note="allocation cancelled")
                award.update(committed=Decimal(0), status="released", closed_at=a["released_at"])
            elif a["status"] in ("active", "released"):
                used = amount if a["status"] == "released" else _money(amount * Decimal(rng.randint(1, 9)) / 10)
                if used > 0:  # redeemed by usage reports, written after these rows (usage_and_redemptions)
                    self.redemptions.append((award, used))
                    award["redeemed"] = used
                if a["status"] == "released" and used > 0 and rng.random() < 0.6:
                    entry("write_off", used, pid, at + dt.timedelta(days=40), award, reference=f"沪长财拨〔{at.year}〕{award['id']}号")
                    award["written_off"] = used
                    award["notice_state"] = "final" if program["requires_notice"] else "not_noticed"
                if a["status"] == "released":
                    award.update(status="released", closed_at=a["released_at"])
            for name in ("committed", "redeemed", "written_off"):
                totals[pid][name] += award[name]
        deposits = []
        for program in programs:
            need = totals[program["id"]]["committed"]
            budget = max(_money(need * Decimal("1.25")), Decimal(1_000_000))
            halves = (_money(budget / 2), budget - _money(budget / 2))
            for n, part in enumerate(halves, start=1):
                deposits.append((program["id"], part, self.now - dt.timedelta(days=380 - 180 * n),
                                 f"沪经信智〔{self.now.year}〕{480 + program['id'] * 2 + n}号"))
            program.update(budget=budget, **{k: totals[program["id"]][k] for k in ("committed", "redeemed", "written_off")})
        # The deposits came first: they take the first ids, and every other row moves up past them.
        for row in entries:
            row["id"] += len(deposits)
            row["idempotency_key"] = f"bench:{row['kind']}:{row['id']}"
            if row["reverses_id"] is not None:
                row["reverses_id"] += len(deposits)
        awarded = entries
        entries = []
        for pid, amount, at, reference in deposits:
            entry("deposit", amount, pid, at, reference=reference, actor_id=self.staff_ids[0])
        entries += awarded
        self._plan_notices(programs, awards)
        self.w.write(t["subsidy_programs"], programs)
        self.w.write(t["subsidy_awards"], awards)
        self.w.write(t["ledger_entries"], entries)
        self.awards = awards
        self.next_entry_id = len(entries) + 1
        self.w.echo(f"  {len(programs)} programs, {len(awards):,} awards, {len(entries):,} ledger rows")

    # -- usage and what it redeemed -------------------------------------------------------------

    def usage_and_redemptions(self, ledger_rows: int) -> None:
        """The carriers' usage reports and the `redeem` rows they paid, streamed (millions of rows).

        Each award's redeemed sum is split into as many redemptions as it takes for the ledger to hold
        about `ledger_rows` rows, each paying for one usage report of its allocation's share of use,
        over the 35 days after the decision (before any write-off). Granted allocations without an
        award report their use too, one to three times, for the utilisation report.
        """
        plan = self._redemption_plan(ledger_rows)
        subsidised = {award["allocation_id"] for award, _used in self.redemptions}
        quiet = [a for a in self.allocation_rows
                 if a["status"] in ("active", "released") and a["id"] not in subsidised]
        offers = {o["id"]: o for o in self.offer_rows}

        def report_times(at: dt.datetime, k: int) -> list[dt.datetime]:
            span = min(dt.timedelta(days=35), self.now - at - dt.timedelta(hours=1))
            return [at + span * (i + 1) / (k + 1) for i in range(k)]

        def usage_rows() -> Iterator[dict[str, Any]]:
            n = 0
            for award, parts in plan:
                allocation = self.allocation_rows[award["allocation_id"] - 1]
                used_fen = sum(parts)
                for part, at in zip(parts, report_times(allocation["decided_at"], len(parts))):
                    n += 1
                    share = (allocation["quantity"] * part / used_fen).quantize(Decimal("0.001"))
                    yield self._usage(n, offers[allocation["offer_id"]], allocation, share, at)
            rng = random.Random(self.p.rng.random())
            for allocation in quiet:
                k = rng.randint(1, 3)
                for at in report_times(allocation["decided_at"], k):
                    n += 1
                    share = (allocation["quantity"] * Decimal(rng.randint(0, 60)) / 100 / k).quantize(Decimal("0.001"))
                    yield self._usage(n, offers[allocation["offer_id"]], allocation, share, at)

        def redeem_rows() -> Iterator[dict[str, Any]]:
            entry_id, usage_id = self.next_entry_id - 1, 0
            for award, parts in plan:
                allocation = self.allocation_rows[award["allocation_id"] - 1]
                for part, at in zip(parts, report_times(allocation["decided_at"], len(parts))):
                    entry_id += 1
                    usage_id += 1
                    yield {"id": entry_id, "kind": "redeem", "amount": Decimal(part) / 100,
                           "program_id": award["program_id"], "startup_id": award["startup_id"],
                           "carrier_id": award["carrier_id"], "allocation_id": award["allocation_id"],
                           "award_id": award["id"], "reverses_id": None, "usage_report_id": usage_id, "reason": None,
                           "note": None, "reference": None, "fiscal_year": award["fiscal_year"], "actor_id": None,
                           "idempotency_key": f"bench:redeem:{entry_id}", "created_at": at}

        usage = self.w.write(self.meta["usage_reports"], usage_rows())
        redeemed = self.w.write(self.meta["ledger_entries"], redeem_rows())
        self.w.echo(f"  {usage:,} usage reports, {redeemed:,} redemptions "
                    f"({self.next_entry_id - 1 + redeemed:,} ledger rows in all)")

    def _redemption_plan(self, ledger_rows: int) -> list[tuple[dict[str, Any], list[int]]]:
        """Per award with use, its redeemed sum in fen split into equal parts (the first ones a fen more)."""
        wanted = max(ledger_rows - (self.next_entry_id - 1), len(self.redemptions))
        base, extra = divmod(wanted, max(len(self.redemptions), 1))
        plan = []
        for rank, (award, used) in enumerate(self.redemptions):
            fen = int(used * 100)
            k = max(1, min(fen, base + (1 if rank < extra else 0)))
            part, more = divmod(fen, k)
            plan.append((award, [part + (1 if i < more else 0) for i in range(k)]))
        return plan

    def _usage(self, n: int, offer: dict[str, Any], allocation: dict[str, Any], quantity: Decimal,
               at: dt.datetime) -> dict[str, Any]:
        return {"id": n, "carrier_id": offer["carrier_id"], "external_id": f"bench-usage-{n}",
                "allocation_id": allocation["id"], "quantity": quantity, "recorded_at": at, "created_at": at}

    # -- the district's survey, the carriers' pledges, the startups' ratings ---------------------

    def surveys(self) -> None:
        """A demand survey per quarter of this year and the next quarter (that one still open), about a
        third of verified startups answering each with one to four lines."""
        rng, today = self.rng, local_date(self.now)
        campaigns, lines = [], []
        for n, (year, quarter) in enumerate(_quarters(today), start=1):
            first = dt.date(year, 3 * quarter - 2, 1)
            campaigns.append({
                "id": n, "title": f"{year}年第{quarter}季度算力与数据资源需求摸排", "period": f"{year}-Q{quarter}",
                "opens_on": first - dt.timedelta(days=45), "closes_on": first - dt.timedelta(days=14 - n),
                "kinds": sorted(KIND_TERMS), "allow_unregistered": False, "created_by": self.staff_ids[1],
                "created_at": _at(first - dt.timedelta(days=46)), "reminded_at": None,
            })
            for startup in rng.sample(self.verified, len(self.verified) // 3):
                for kind in rng.sample(list(KIND_TERMS), rng.randint(1, 4)):
                    (low, high), (q_low, q_high), _attributes = KIND_TERMS[kind]
                    month = dt.date(year, 3 * quarter - 2 + rng.randrange(3), 1)
                    lines.append({
                        "id": len(lines) + 1, "campaign_id": n, "startup_id": startup["id"], "kind": kind,
                        "region": REGIONS[rng.randrange(len(REGIONS))], "month": month,
                        "quantity": Decimal(rng.randint(q_low, q_high) * rng.randint(1, 5)),
                        "max_unit_price": _money(Decimal(str(rng.uniform(low * 0.5, high)))) if rng.random() < 0.7 else None,
                        "purpose": "大模型训练与推理" if kind in ("gpu", "tokens") else "业务系统上云与数据传输",
                        "updated_at": _at(first - dt.timedelta(days=rng.randint(15, 44))),
                    })
        self.w.write(self.meta["survey_campaigns"], campaigns)
        self.w.write(self.meta["survey_declarations"], lines)
        self.w.echo(f"  {len(campaigns)} demand surveys, {len(lines):,} survey lines")

    def pledges(self) -> None:
        """Each carrier's pledge per kind and quarter, free or discounted."""
        rng, today = self.rng, local_date(self.now)
        rows = []
        for year, quarter in _quarters(today):
            first = dt.date(year, 3 * quarter - 2, 1)
            last = dt.date(year + quarter // 4, 3 * quarter % 12 + 1, 1) - dt.timedelta(days=1)
            for carrier_id in range(1, len(CARRIERS) + 1):
                for kind, (_price, (_low, high), _attributes) in KIND_TERMS.items():
                    free = rng.random() < 0.2
                    rows.append({
                        "id": len(rows) + 1, "carrier_id": carrier_id, "period": f"{year}-Q{quarter}",
                        "first_day": first, "last_day": last, "kind": kind,
                        "quantity": Decimal(high * rng.randint(200, 2_000)), "terms": "free" if free else "discounted",
                        "unit_price": None, "discount_rate": None if free else Decimal(rng.choice(("0.1", "0.2", "0.3"))),
                        "note": "", "recorded_by_id": carrier_id, "created_at": _at(first - dt.timedelta(days=30)),
                        "updated_at": _at(first - dt.timedelta(days=30)),
                    })
        self.w.write(self.meta["pledges"], rows)
        self.w.echo(f"  {len(rows)} pledges")

    def ratings(self) -> None:
        """About a quarter of completed allocations rated by their startup, mostly well."""
        rng = self.rng

        def rows() -> Iterator[dict[str, Any]]:
            n = 0
            for a in self.allocation_rows:
                if a["status"] != "released" or a["released_at"] is None or rng.random() > 0.25:
                    continue
                n += 1
                startup_id = self.request_rows[a["request_id"] - 1]["startup_id"]
                score = rng.choices((5, 4, 3, 2, 1), weights=(45, 30, 15, 6, 4))[0]
                yield {"id": n, "allocation_id": a["id"], "startup_id": startup_id, "score": score,
                       "comment": "资源开通及时，使用稳定" if score >= 4 and rng.random() < 0.3 else None,
                       "rated_by_id": self.first_startup_account + startup_id - 1,
                       "created_at": min(a["released_at"] + dt.timedelta(days=rng.randint(1, 10)), self.now)}

        rated = self.w.write(self.meta["allocation_ratings"], rows())
        self.w.echo(f"  {rated:,} satisfaction ratings")

    # -- public notices ------------------------------------------------------------------------

    def _plan_notices(self, programs: list[dict[str, Any]], awards: list[dict[str, Any]]) -> None:
        """Notices as `broker.services.notices` leaves them: every award already final sits in a final
        notice; three open ones hold recent committed awards not noticed yet (moved in_notice here,
        before the awards are written)."""
        rng = self.rng
        self.notice_rows: list[dict[str, Any]] = []
        self.notice_items: list[dict[str, Any]] = []
        self.objection_rows: list[dict[str, Any]] = []
        noticed = [p for p in programs if p["requires_notice"]]
        for program in noticed:
            final = sorted((a for a in awards if a["program_id"] == program["id"] and a["notice_state"] == "final"),
                           key=lambda a: (a["created_at"], a["id"]))
            batch: list[dict[str, Any]] = []
            for award in final:
                if batch and (len(batch) == MAX_BATCH or award["created_at"] - batch[0]["created_at"] > NOTICE_SPAN):
                    self._final_notice(program, batch)
                    batch = []
                batch.append(award)
            if batch:
                self._final_notice(program, batch)
        today = local_date(self.now)
        # Open: one running (objections still taken), one past its end with an objection unanswered,
        # and a small one frozen by award ids rather than by program.
        plans = [(noticed[1 % len(noticed)], today - dt.timedelta(days=1), 300, 4, True),
                 (noticed[0], today - dt.timedelta(days=14), 200, 1, True),
                 (noticed[-1], today, 50, 0, False)]
        for program, starts_on, size, still_open, by_program in plans:
            created_at = min(self.now - dt.timedelta(minutes=5),
                             dt.datetime.combine(starts_on, dt.time(9), SHANGHAI).astimezone(dt.timezone.utc))
            batch = sorted((a for a in awards if a["program_id"] == program["id"] and a["status"] == "committed"
                            and a["notice_state"] == "not_noticed" and a["created_at"] < created_at
                            and (a["fiscal_year"] == starts_on.year or not by_program)),
                           key=lambda a: (a["created_at"], a["id"]))[-size:]
            if not batch:
                continue
            for award in batch:
                award["notice_state"] = "in_notice"
            notice = self._notice(program, batch, starts_on, 5, created_at, None, by_program)
            ends_at = min(self.now, dt.datetime.combine(notice["ends_on"], dt.time(23), SHANGHAI).astimezone(dt.timezone.utc))
            self._objections(notice, still_open, 2 if still_open else 0, ends_at)
        del rng

    def _final_notice(self, program: dict[str, Any], batch: list[dict[str, Any]]) -> None:
        created_at = batch[-1]["created_at"] + dt.timedelta(days=1)
        starts_on = local_date(created_at)
        days = self.rng.choice((5, 5, 5, 7, 10))
        finalised = self._finalised_at(starts_on, days)
        if finalised > self.now:  # the latest awards: the shortest notice, finalised by now
            days, finalised = 1, min(self._finalised_at(starts_on, 1), self.now)
        notice = self._notice(program, batch, starts_on, days, created_at, finalised, True)
        if self.rng.random() < 0.3:
            self._objections(notice, 0, self.rng.randint(1, 3), finalised - dt.timedelta(hours=12))

    @staticmethod
    def _finalised_at(starts_on: dt.date, days: int) -> dt.datetime:
        """The daily job finalises a notice early on the day after its last working day."""
        day_after = add_working_days(starts_on, days) + dt.timedelta(days=1)
        return dt.datetime.combine(day_after, dt.time(1, 30), SHANGHAI).astimezone(dt.timezone.utc)

    def _notice(self, program: dict[str, Any], batch: list[dict[str, Any]], starts_on: dt.date, days: int,
                created_at: dt.datetime, finalised: dt.datetime | None, by_program: bool) -> dict[str, Any]:
        number = len(self.notice_rows) + 1
        year = batch[-1]["fiscal_year"]
        notice = {"id": number, "title": f"{year}年{program['name']}拟支持企业名单公示（第{number}批）",
                  "program_id": program["id"] if by_program else None, "fiscal_year": year if by_program else None,
                  "starts_on": starts_on, "working_days": days, "ends_on": add_working_days(starts_on, days),
                  "status": "final" if finalised else "open", "created_by": self.staff_ids[1 + number % 3],
                  "created_at": created_at, "finalised_at": finalised}
        self.notice_rows.append(notice)
        for award in batch:
            self.notice_items.append({
                "id": len(self.notice_items) + 1, "notice_id": number, "award_id": award["id"],
                "program_id": award["program_id"], "startup_name": self.startup_rows[award["startup_id"] - 1]["name"],
                "program_name": program["name"], "amount": award["amount"], "removed_at": None})
        notice["items"] = (len(self.notice_items) - len(batch) + 1, len(self.notice_items))  # its item ids
        return notice

    def _objections(self, notice: dict[str, Any], still_open: int, answered: int, until: dt.datetime) -> None:
        """Objections lodged while the notice ran (before `until`): `answered` dismissed, then `still_open` open."""
        rng = self.rng
        begins = dt.datetime.combine(notice["starts_on"], dt.time(9), SHANGHAI).astimezone(dt.timezone.utc)
        first, last = notice["items"]
        for n in range(answered + still_open):
            lodged = begins + (until - begins) * rng.uniform(0.05, 0.6 if n < answered else 0.95)
            name, contact = rng.choice(OBJECTORS)
            text = rng.choice(OBJECTION_TEXTS)
            whole = text.startswith("对本批")
            decided = n < answered
            self.objection_rows.append({
                "id": len(self.objection_rows) + 1, "notice_id": notice["id"],
                "item_id": None if whole else rng.randint(first, last), "name": name, "contact": contact,
                "text": text, "lodged_at": lodged, "status": "dismissed" if decided else "open",
                "answer": "经核查，该企业申报材料真实、符合项目条件，异议不成立。" if decided else None,
                "answered_by": self.staff_ids[2] if decided else None,
                "answered_at": lodged + (until - lodged) / 2 if decided else None})

    def notices(self) -> None:
        rows = [{k: v for k, v in n.items() if k != "items"} for n in self.notice_rows]
        self.w.write(self.meta["subsidy_notices"], rows)
        self.w.write(self.meta["subsidy_notice_items"], self.notice_items)
        self.w.write(self.meta["subsidy_objections"], self.objection_rows)
        biggest = max((n["items"][1] - n["items"][0] + 1 for n in self.notice_rows), default=0)
        self.w.echo(f"  {len(rows)} notices ({sum(n['status'] == 'open' for n in rows)} open, the biggest of "
                    f"{biggest} awards), {len(self.notice_items):,} items, {len(self.objection_rows)} objections")

    # -- around the market ---------------------------------------------------------------------

    def appeals(self) -> None:
        """Threads on rejected and lapsed allocations: most answered (two messages), some waiting for
        the district (one message, a few of them overdue), some closed."""
        rng = self.rng
        decided = [a for a in self.allocation_rows if a["status"] in ("rejected", "lapsed")]
        picked = rng.sample(decided, min(len(decided), max(5, self.p.allocations // 500)))
        rows, messages = [], []
        for n, a in enumerate(sorted(picked, key=lambda a: a["id"]), start=1):
            answered = rng.random() < 0.7 or a["cycle_id"] < self.p.cycles - 4
            closed = answered and rng.random() < 0.5
            at = a["decided_at"] + dt.timedelta(hours=rng.uniform(1, 48))
            startup_id = self.request_rows[a["request_id"] - 1]["startup_id"]
            staff = self.staff_ids[n % len(self.staff_ids)]
            answered_at = at + dt.timedelta(days=2)
            rows.append({"id": n, "allocation_id": a["id"], "startup_id": startup_id,
                         "message": "分配被驳回，请复核我司的用途说明",
                         "status": "closed" if closed else "answered" if answered else "open",
                         "answer": "经复核，维持原决定" if answered else None,
                         "answered_by_id": staff if answered else None,
                         "answered_at": answered_at if answered else None, "created_at": at,
                         "assigned_to_id": None, "closed_at": answered_at + dt.timedelta(days=1) if closed else None,
                         "closed_by_id": staff if closed else None,
                         "waiting_since": answered_at if answered else at})
            messages.append({"id": len(messages) + 1, "appeal_id": n, "author_id": self.first_startup_account + startup_id - 1,
                             "author_side": "startup", "body": rows[-1]["message"], "created_at": at})
            if answered:
                messages.append({"id": len(messages) + 1, "appeal_id": n, "author_id": staff, "author_side": "district",
                                 "body": rows[-1]["answer"], "created_at": answered_at})
        self.w.write(self.meta["appeals"], rows)
        self.w.write(self.meta["appeal_messages"], messages)

    def syncs(self) -> None:
        """A daily pull per carrier over the year; some failed, some quarantined records."""
        rng = self.rng
        syncs, quarantined = [], []
        days = 365
        for carrier_id in range(1, len(CARRIERS) + 1):
            for d in range(days, 0, -1):
                started = self.now - dt.timedelta(days=d, hours=-carrier_id)
                failed = rng.random() < 0.03
                q = 0 if failed else (rng.randint(1, 12) if rng.random() < 0.3 else 0)
                sync_id = len(syncs) + 1
                syncs.append({"id": sync_id, "carrier_id": carrier_id, "source": "pull",
                              "status": "failed" if failed else "succeeded", "complete": not failed,
                              "started_at": started, "finished_at": started + dt.timedelta(seconds=rng.randint(5, 90)),
                              "new": 0 if failed else rng.randint(0, 5), "changed": 0 if failed else rng.randint(0, 40),
                              "unchanged": 0 if failed else 240 - 5, "withdrawn": 0, "quarantined": q, "conflicts": 0,
                              "error": "连接超时（read timeout 30 s）" if failed else None, "encoding": None})
                for k in range(q):
                    quarantined.append({"id": len(quarantined) + 1, "sync_id": sync_id, "external_id": f"bad-{sync_id}-{k}",
                                        "location": f"offers[{k * 17}]", "reason": "unit_price: 不是有效的金额",
                                        "raw": {"id": f"bad-{sync_id}-{k}", "unit_price": "N/A"}})
        self.w.write(self.meta["carrier_syncs"], syncs)
        self.w.write(self.meta["quarantined_records"], quarantined)

    def policies(self) -> None:
        rows = []
        for n in range(1, 13):
            rows.append({"id": n, "sector_weights": {"smart_driving": "2", "energy_management": "2", "smart_healthcare": "2"},
                         "default_weight": Decimal(1), "key_enterprise_bonus": Decimal("0.5"),
                         "wait_bonus_per_cycle": Decimal("0.1"), "share_cap": Decimal("0.3") + Decimal(n) / 100,
                         "approval_window_hours": 72, "max_request_quantity": {},
                         "created_at": self.now - dt.timedelta(days=30 * (13 - n)), "created_by_id": self.staff_ids[0]})
        self.w.write(self.meta["policies"], rows)

    def events_and_audit(self) -> None:
        """Audit entries for what the services would have logged (registrations, reviews, requests,
        decisions), and events for the startups' feeds."""
        rng = self.rng

        def audit_rows() -> Iterator[dict[str, Any]]:
            n = 0
            for s in self.startup_rows:
                n += 1
                yield {"id": n, "at": s["created_at"], "actor_id": self.first_startup_account + s["id"] - 1,
                       "acting_staff_id": None, "action": "create", "entity_type": "startups", "entity_id": s["id"],
                       "before": None, "after": {"name": s["name"], "uscc": s["uscc"], "sector": s["sector"]}}
                if s["reviewed_at"]:
                    n += 1
                    action = "verify" if s["verified_at"] else "reject"
                    yield {"id": n, "at": s["reviewed_at"], "actor_id": s["reviewed_by_id"], "acting_staff_id": None,
                           "action": action, "entity_type": "startups", "entity_id": s["id"],
                           "before": {"status": "pending"}, "after": {"status": s["status"]}}
            for r in self.request_rows:
                n += 1
                yield {"id": n, "at": r["submitted_at"], "actor_id": self.first_startup_account + r["startup_id"] - 1,
                       "acting_staff_id": None, "action": "create", "entity_type": "resource_requests", "entity_id": r["id"],
                       "before": None, "after": {"kind": r["kind"], "quantity": str(r["quantity"]), "status": "submitted"}}
            for a in self.allocation_rows:
                if a["decided_at"] is None or a["id"] % 4:  # a quarter of the decisions: the log's size, not its every line
                    continue
                n += 1
                action = {"lapsed": "lapse", "rejected": "reject", "cancelled": "cancel"}.get(a["status"], "approve")
                yield {"id": n, "at": a["decided_at"], "actor_id": a["decided_by_id"], "acting_staff_id": None,
                       "action": action, "entity_type": "allocations", "entity_id": a["id"],
                       "before": {"status": "proposed"}, "after": {"status": a["status"]}}
            self.audit_id = n

        def event_rows() -> Iterator[dict[str, Any]]:
            n = 0
            for a in self.allocation_rows:
                if a["id"] % 10:
                    continue
                n += 1
                r = self.request_rows[a["request_id"] - 1]
                yield {"id": n, "type": f"allocation.{a['status']}", "startup_id": r["startup_id"], "carrier_id": None,
                       "allocation_id": a["id"], "payload": {"allocation_id": a["id"], "status": a["status"]},
                       "created_at": a["updated_at"]}
            self.event_id = n

        self.w.write(self.meta["audit_log"], audit_rows())
        self.w.write(self.meta["events"], event_rows())
        del rng


def _split(count: int, cycles: int, offers: int, rng: random.Random) -> list[int]:
    """`count` allocations over `cycles` cycles, at least one each and at most `offers` each."""
    cycles = min(cycles, count) or 1
    parts = [1] * cycles
    left = count - cycles
    while left > 0:
        i = rng.randrange(cycles)
        room = offers - parts[i]
        if room <= 0:
            if all(offers - p <= 0 for p in parts):
                break  # more than the offers of its kind can take: fewer allocations, not duplicates
            continue
        step = min(left, room, max(1, left // cycles))
        parts[i] += step
        left -= step
    return parts


def _quarters(today: dt.date) -> list[tuple[int, int]]:
    """The quarters of `today`'s year, and the next one."""
    nxt = (today.year + 1, 1)
    return [(today.year, q) for q in range(1, 5)] + [nxt]


def _at(day: dt.date) -> dt.datetime:
    """09:00 in Shanghai on `day`, as the naive UTC the columns store."""
    return dt.datetime.combine(day, dt.time(1, 0), tzinfo=dt.timezone.utc)


def _tables() -> dict[str, sa.Table]:
    from broker.db import Base
    import broker.models  # noqa: F401 - registers every table

    return dict(Base.metadata.tables)


SEQUENCED = ("carriers", "accounts", "startups", "people", "offers", "resource_requests", "matching_cycles", "allocations",
             "subsidy_programs", "subsidy_awards", "ledger_entries", "subsidy_notices", "subsidy_notice_items",
             "subsidy_objections", "appeals", "appeal_messages", "carrier_syncs", "quarantined_records", "policies", "audit_log", "events",
             "usage_reports", "survey_campaigns", "survey_declarations", "pledges", "allocation_ratings")


def _periods(code: str, today: dt.date) -> list[str]:
    """The program's last periods that have begun, oldest first: quarters (the current one last) or months."""
    labels = []
    if code in SETTLED_BY_QUARTER:
        quarter = today.year * 4 + (today.month - 1) // 3
        for q in range(quarter - len(STATEMENT_FATES) + 1, quarter + 1):
            labels.append(f"{q // 4}-Q{q % 4 + 1}")
    else:
        month = today.year * 12 + today.month - 1
        for m in range(month - len(STATEMENT_FATES), month):  # the months that have ended
            labels.append(f"{m // 12}-{m % 12 + 1:02d}")
    return labels


def build_statements(app: Any, now: dt.datetime, staff_ids: list[int], echo: Any) -> int:
    """Statements through the settlement service, as staff would have built and approved them after each
    period: a different staff account approves (two where four eyes are needed); approvals write the write-off
    rows and move the cached totals, so the ledger still reconciles. Returns the number of lines."""
    from broker.db import get_session
    from broker.models import Account
    from broker.services import settlement

    lines = 0
    with app.app_context():
        session = get_session()
        builder, first, second = (session.get(Account, i) for i in staff_ids[1:4])
        threshold = Decimal(app.config.get("SETTLEMENT_FOUR_EYES_ABOVE", settlement.DEFAULT_FOUR_EYES_ABOVE))
        for code, *_rest in PROGRAMS:
            for label, fate in zip(_periods(code, local_date(now)), STATEMENT_FATES):
                ends_at = settlement.parse_period(label).ends_at
                built_at = min(now - dt.timedelta(hours=2), ends_at + dt.timedelta(days=3))
                view = settlement.build_statement(session, builder, {"program": code, "period": label}, built_at, threshold)
                reference = f"沪长财拨〔{ends_at.year}〕{9000 + view.id}号"
                for approver, days in ((first, 1), (second, 2)):
                    if fate == "draft" or view.status.value != "draft":
                        break
                    if fate == "approved_once" and view.approvals_needed == 1:
                        break
                    approved_at = min(now - dt.timedelta(hours=1), built_at + dt.timedelta(days=days))
                    view = settlement.approve_statement(session, approver, view.id, {"disbursement_reference": reference},
                                                        approved_at)
                    if fate == "approved_once":
                        break
                lines += len(view.lines)
                echo(f"  statement {view.id}: {code} {label} {view.status.value}, {len(view.lines):,} lines")
        session.close()
    return lines


def _empty_problem(connection: sa.Connection) -> str | None:
    for table in ("startups", "carriers", "allocations", "people"):
        if connection.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None:
            return f"the database already has rows in {table}: the district is built into an empty migrated database"
    return None


def build_district(url: str, *, startups: int, requests: int, allocations: int, cycles: int = 50, seed: int = 0,
                   ledger_rows: int = 0, echo: Any = click.echo) -> dict[str, int]:
    """Fill the empty migrated database at `url` with a district of these sizes; return the row counts."""
    from broker import create_app
    from broker.clock import now
    from broker.db import get_db, get_session
    from broker.migrations import schema_problem
    from broker.models import Role
    from broker.services import people, report_utilisation

    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite" and allocations > SQLITE_MAX_ALLOCATIONS:
        raise click.ClickException(
            f"SQLite is for small districts only (at most {SQLITE_MAX_ALLOCATIONS:,} allocations): the page-speed "
            "benchmark's district goes on PostgreSQL (--database-url postgresql+psycopg://…)")
    app = create_app({"BROKER_ENV": "test", "DATABASE_URL": url, "SECRET_KEY": "bench",
                      "INSTANCE_PATH": tempfile.mkdtemp(prefix="broker-bench-")})
    engine = get_db(app).engine
    try:
        with app.app_context():
            session = get_session()
            problem = schema_problem(engine, session.connection)
            session.rollback()
            if problem:
                raise click.ClickException(problem)
            moment = now()
        counts = Counts()
        plan = Plan(moment, startups, requests, allocations, cycles, random.Random(seed))
        started = time.perf_counter()

        def step(text: str) -> None:
            echo(f"[{time.perf_counter() - started:6.1f} s] {text}")

        with engine.begin() as connection:
            problem = _empty_problem(connection)
            if problem:
                raise click.ClickException(problem)
            district = District(plan, Writer(connection, counts, step))
            step("parties")
            district.parties()
            district.people()
            step("offers, requests, allocations")
            district.cycles()
            district.offers()
            district.requests_and_allocations()
            district.write_allocations()
        with engine.begin() as connection:
            district.w = Writer(connection, counts, step)
            step("subsidies and the ledger")
            district.subsidies()
            district.notices()
            district.usage_and_redemptions(ledger_rows)
            step("demand surveys, pledges, ratings")
            district.surveys()
            district.pledges()
            district.ratings()
            step("appeals, syncs, policies, events, the audit log")
            district.appeals()
            district.syncs()
            district.policies()
            district.events_and_audit()
            if connection.dialect.name == "postgresql":
                for table in SEQUENCED:
                    connection.execute(sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"))
        step("settlement statements, through the settlement service")
        lines = build_statements(app, plan.now, district.staff_ids, step)
        counts.add("settlement_lines", lines)
        with engine.begin() as connection:
            counts.add("settlement_statements", connection.execute(sa.text("SELECT COUNT(*) FROM settlement_statements")).scalar() or 0)
            if connection.dialect.name == "postgresql":
                step("ANALYZE")
                connection.exec_driver_sql("ANALYZE")
        step("the utilisation report's rollup, through its refresh (the scheduler's refresh_rollups)")
        with app.app_context():
            rolled = report_utilisation.refresh(get_session(), plan.now)
            counts.add("allocation_use", rolled)
        with app.app_context():
            person = people.create_district_person(get_session(), STAFF_EMAIL, "页面测速员", Role.staff, STAFF_PASSWORD)
            counts.add("people", 1)
            step(f"staff person {person.id} made")
        return dict(counts.rows)
    finally:
        engine.dispose()


@click.command("district")
@click.option("--database-url", required=True, help="an EMPTY database migrated to head (PostgreSQL for the full size)")
@click.option("--startups", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--requests", "requests_", default=100_000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--allocations", default=1_000_000, show_default=True, type=click.IntRange(0, 100_000_000))
@click.option("--cycles", default=50, show_default=True, type=click.IntRange(2, 1000), help="weekly cycles")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--ledger-rows", default=5_000_000, show_default=True, type=click.IntRange(0, 100_000_000),
              help="about this many ledger rows: each award's use redeemed in that many more, smaller parts")
def bench_district(database_url: str, startups: int, requests_: int, allocations: int, cycles: int, seed: int,
                   ledger_rows: int) -> None:
    """Build a made-up district of this size into an empty migrated database, for `broker bench console`
    and `broker bench reports`."""
    started = time.perf_counter()
    counts = build_district(database_url, startups=startups, requests=requests_, allocations=allocations,
                            cycles=cycles, seed=seed, ledger_rows=ledger_rows)
    click.echo(f"District built in {time.perf_counter() - started:.1f} s:")
    for table, n in sorted(counts.items()):
        click.echo(f"  {table:<22}{n:>12,}")
    click.echo(f"Staff person: {STAFF_EMAIL}  password: {STAFF_PASSWORD}")
