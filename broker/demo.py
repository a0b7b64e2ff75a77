"""The demo district: three carriers, twenty startups, offers of every kind, open requests.

Loaded through the same service functions the API uses, so the demo exercises the real
rules. Deterministic (a fixed seed), and loaded once: running the demo again keeps the data
and only issues a fresh staff token.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask

from broker.db import get_db
from broker.migrations import upgrade
from broker.models import Account, Carrier, Offer, ResourceRequest, Role, Sector, Startup, SubsidyProgram
from broker.services import accounts, market
from broker.services.policy import default_policy
from broker.uscc import CHARSET, check_character

CARRIERS = [
    ("telecom", "中国电信上海公司", "telecom"),
    ("mobile", "中国移动上海公司", "mobile"),
    ("unicom", "中国联通上海市分公司", "unicom"),
]

# (name, sector, headcount, founded year, key enterprise, verified)
STARTUPS = [
    ("硅巷智驾科技（上海）有限公司", Sector.smart_driving, 86, 2021, True, True),
    ("上海虹桥星图自动驾驶有限公司", Sector.smart_driving, 42, 2022, False, True),
    ("上海遵义路智能网联科技有限公司", Sector.smart_driving, 19, 2024, False, True),
    ("长宁新能智控科技有限公司", Sector.energy_management, 55, 2020, True, True),
    ("上海愚园路储能数据科技有限公司", Sector.energy_management, 23, 2023, False, True),
    ("上海碳迹能源科技有限公司", Sector.energy_management, 12, 2025, False, False),
    ("上海武夷路医脉智能科技有限公司", Sector.smart_healthcare, 64, 2021, True, True),
    ("上海影衡医疗人工智能有限公司", Sector.smart_healthcare, 31, 2022, False, True),
    ("上海古北智慧康养科技有限公司", Sector.smart_healthcare, 15, 2024, False, True),
    ("上海言川大模型科技有限公司", Sector.ai_models, 120, 2019, True, True),
    ("上海新华路语元智能科技有限公司", Sector.ai_models, 27, 2023, False, True),
    ("上海北新泾视觉智能有限公司", Sector.ai_models, 38, 2022, False, True),
    ("上海织机工业软件有限公司", Sector.industrial_software, 74, 2018, False, True),
    ("上海中山公园数链金融科技有限公司", Sector.fintech, 46, 2020, False, True),
    ("上海番禺路数字文创有限公司", Sector.digital_culture, 18, 2023, False, True),
    ("上海虹桥跨境云商科技有限公司", Sector.ecommerce, 52, 2019, False, True),
    ("上海江苏路数据出海科技有限公司", Sector.ecommerce, 9, 2025, False, False),
    ("上海仙霞生物信息科技有限公司", Sector.life_sciences, 33, 2021, False, True),
    ("上海天山路机器人科技有限公司", Sector.other, 21, 2022, False, True),
    ("长宁航空数据科技有限公司", Sector.other, 14, 2024, False, False),
]

CONTACTS = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷"]

REGIONS = [
    "sh-changning",  # 长宁: Hongqiao Data Valley (虹桥数谷) compute platform
    "sh-minhang",
    "sh-pudong",
    "sh-lingang",
    "sh-jiading",
    "sh-songjiang",
    "js-suzhou",
    "zj-hangzhou",
    "gz-guian",
    "nm-ulanqab",
]

TOKEN_MODELS = {"telecom": "telechat-2", "mobile": "jiutian-pro", "unicom": "yuanjing-70b"}


def demo_uscc(rng: random.Random) -> str:
    """A well-formed code for a company registered in Changning (division code 310105)."""
    body = "91310105" + "".join(rng.choice(CHARSET[:10] + "ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + check_character(body)


@dataclass
class DemoSummary:
    created: bool
    staff_token: str
    counts: dict[str, int]
    database: str

    def describe(self, base_url: str) -> str:
        lines = [
            "Silicon Alley Resource Broker (上海硅巷资源撮合平台) — demo",
            f"  database:   {self.database} ({'demo data loaded' if self.created else 'existing demo data kept'})",
            "  contents:   " + ", ".join(f"{n} {k}" for k, n in self.counts.items()),
            f"  API:        {base_url}/api/v1/",
            f"  API docs:   {base_url}/api/docs",
            f"  OpenAPI:    {base_url}/api/openapi.json",
            f"  health:     {base_url}/healthz  {base_url}/readyz",
            f"  staff token (shown once): {self.staff_token}",
            f"  try:        curl -H 'Authorization: Bearer {self.staff_token}' '{base_url}/api/v1/offers?kind=gpu'",
        ]
        return "\n".join(lines)


def prepare_demo(app: Flask) -> DemoSummary:
    """Migrate, load the demo data if the database has none, and issue a staff token."""
    database = get_db(app)
    upgrade(database.engine)
    with app.app_context():
        session = database.sessionmaker()
        try:
            created = session.scalar(sa.select(sa.func.count(Carrier.id))) == 0
            if created:
                load_demo_data(session)
            _, _, staff_token = accounts.create_user(session, Role.staff, "演示：区科委工作人员 (demo staff)")
            counts = {
                "carriers": _count(session, Carrier),
                "startups": _count(session, Startup),
                "offers": _count(session, Offer),
                "requests": _count(session, ResourceRequest),
            }
        finally:
            session.close()
    return DemoSummary(created, staff_token, counts, database.engine.url.render_as_string(hide_password=True))


def _count(session: sa.orm.Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def load_demo_data(session: sa.orm.Session) -> None:
    rng = random.Random(2026)
    today = dt.date.today()
    admin, _, _ = accounts.create_user(session, Role.admin, "演示：平台管理员 (demo admin)")
    staff, _, _ = accounts.create_user(session, Role.staff, "演示：区科委审核员 (demo reviewer)")
    policy = default_policy()
    policy.created_by_id = admin.id
    session.add(policy)
    year_start, year_end = dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)
    session.add_all(
        [
            SubsidyProgram(
                code="tokens-2026",
                name="Tokens 使用及 API 调用专项补贴",
                kinds=["tokens"],
                rate=Decimal("0.5"),
                cap_per_startup=Decimal("200000"),
                budget=Decimal("10000000"),
                starts_on=year_start,
                ends_on=year_end,
            ),
            SubsidyProgram(
                code="compute-voucher-2026",
                name="算力券",
                kinds=["gpu", "cpu"],
                rate=Decimal("0.3"),
                cap_per_startup=Decimal("500000"),
                budget=Decimal("20000000"),
                max_company_age_years=5,
                starts_on=year_start,
                ends_on=year_end,
            ),
        ]
    )
    session.commit()

    carrier_accounts = {}
    for code, name, adapter in CARRIERS:
        carrier, _, _ = accounts.register_carrier(session, code, name, adapter, [adapter])
        carrier_accounts[code] = session.scalar(
            sa.select(Account).where(Account.carrier_id == carrier.id)
        )
    for code, account in carrier_accounts.items():
        market.upsert_offers(session, account, _demo_offers(rng, code, today))

    startup_accounts = []
    for i, (name, sector, headcount, year, key, verified) in enumerate(STARTUPS):
        startup, _, _ = accounts.register_startup(
            session,
            {
                "name": name,
                "uscc": demo_uscc(rng),
                "sector": sector,
                "founded_on": dt.date(year, 1 + i % 12, 1 + i),
                "headcount": headcount,
                "contact_name": CONTACTS[i % len(CONTACTS)],
                "contact_email": f"contact{i + 1}@startup{i + 1}.example.cn",
                "contact_phone": f"+86 21 6{rng.randrange(1000000, 9999999)}",
                "registered_in_district": True,
            },
        )
        startup.key_enterprise = key
        session.commit()
        if verified:
            accounts.verify_startup(session, staff, startup.id)
            startup_accounts.append(session.scalar(sa.select(Account).where(Account.startup_id == startup.id)))
    for account in startup_accounts:
        for data in _demo_requests(rng, account.startup.sector, today):
            market.submit_request(session, account, data)


def _window(today: dt.date, start_weeks: int, length_days: int) -> tuple[dt.date, dt.date]:
    start = today + dt.timedelta(days=7 * start_weeks + (7 - today.weekday()) % 7)
    return start, start + dt.timedelta(days=length_days)


def _demo_offers(rng: random.Random, carrier: str, today: dt.date) -> list[dict]:
    offers = []

    def add(kind: str, region: str, attributes: dict, quantity: int, list_price: str, unit_price: str, days: int) -> None:
        start, end = _window(today, 0, days)
        offers.append(
            {
                "external_id": f"{carrier}-{kind}-{len(offers) + 1:03d}",
                "kind": kind,
                "region": region,
                "attributes": attributes,
                "quantity": Decimal(quantity),
                "window_start": start,
                "window_end": end,
                "list_price": Decimal(list_price),
                "unit_price": Decimal(unit_price),
                "divisible": kind != "data_line",
            }
        )

    home = {"telecom": "sh-changning", "mobile": "sh-minhang", "unicom": "sh-pudong"}[carrier]
    for model, memory, price in (("H100", 80, "28.00"), ("A100", 80, "16.00"), ("910B", 64, "12.00")):
        add("gpu", rng.choice([home, "sh-lingang", "gz-guian"]), {"gpu_model": model, "gpu_memory_gb": memory},
            rng.choice([2000, 4000, 8000]), price, str(Decimal(price) * Decimal("0.6")), 90)
    add("cpu", home, {"arch": "x86_64"}, 200000, "0.12", "0.06", 90)
    add("cpu", "nm-ulanqab", {"arch": "aarch64"}, 500000, "0.08", "0.00", 180)
    add("data_line", home, {"a_end": "sh-changning", "z_end": "hk", "cross_border": "yes"}, 1000, "45.00", "20.00", 365)
    add("data_line", home, {"a_end": "sh-changning", "z_end": "js-suzhou", "cross_border": "no"}, 10000, "3.00", "0.00", 365)
    add("cloud_vm", home, {"flavor": "c7.xlarge", "os": "ubuntu-24.04"}, 5000, "60.00", "30.00", 180)
    add("storage", rng.choice(REGIONS[:6]), {"tier": "standard"}, 800, "120.00", "60.00", 365)
    add("tokens", home, {"model": TOKEN_MODELS[carrier]}, 200000, "8.00", "0.00", 365)
    add("tokens", home, {"model": "deepseek-v3"}, 100000, "4.00", "2.00", 365)
    return offers


def _demo_requests(rng: random.Random, sector: Sector, today: dt.date) -> list[dict]:
    """One or two requests in what the sector typically needs."""
    start, end = _window(today, 1, 30)
    gpu = {
        "kind": "gpu",
        "quantity": Decimal(rng.choice([500, 1000, 2000, 3000])),
        "min_quantity": Decimal(200),
        "attributes": {"gpu_model": rng.sample(["H100", "A100", "910B"], 2)},
        "window_start": start,
        "window_end": end,
        "max_unit_price": Decimal("20.00"),
        "purpose": "模型训练与推理 (model training and inference)",
    }
    tokens = {
        "kind": "tokens",
        "quantity": Decimal(rng.choice([1000, 5000, 20000])),
        "attributes": {},
        "window_start": start,
        "window_end": end,
        "purpose": "大模型 API 调用 (LLM API calls)",
    }
    line = {
        "kind": "data_line",
        "quantity": Decimal(rng.choice([100, 200])),
        "attributes": {"cross_border": ["yes"]},
        "window_start": start,
        "window_end": start + dt.timedelta(days=90),
        "purpose": "数据出海专线 (cross-border data line)",
    }
    vm = {
        "kind": "cloud_vm",
        "quantity": Decimal(rng.choice([64, 128, 256])),
        "regions": ["sh-changning", "sh-minhang", "sh-pudong"],
        "attributes": {"os": ["ubuntu-24.04"]},
        "window_start": start,
        "window_end": end,
        "purpose": "业务系统上云 (hosting)",
    }
    by_sector = {
        Sector.smart_driving: [gpu, line],
        Sector.energy_management: [vm, tokens],
        Sector.smart_healthcare: [gpu, tokens],
        Sector.ai_models: [gpu, tokens],
        Sector.ecommerce: [line, vm],
        Sector.digital_culture: [tokens],
    }
    return by_sector.get(sector, [vm])
