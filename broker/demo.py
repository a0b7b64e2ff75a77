"""The demo district: three carriers, twenty startups, offers of every kind, open requests.

Loaded through the same service functions the API uses, so the demo exercises the real
rules. Deterministic (a fixed seed), and loaded once: running the demo again keeps the data
and only issues a fresh staff token. The carriers' capacity comes in the way it does in
production: each carrier's simulator is served on 127.0.0.1 and synced through its adapter,
and the scheduler runs embedded on a fast schedule, so cycles, provisioning and expiry happen
while you watch.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask

from broker.clock import local_date, now
from broker.db import get_db
from broker.migrations import upgrade
from broker.models import Account, Carrier, Claimant, Offer, ProgramMode, ResourceRequest, Role, Sector, Startup, StartupStatus
from broker.models.people import Person, Side, normalise_email
from broker.services import accounts, market, people
from broker.services import policy as policy_service
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

# The demo's staff person for the console: a known password, printed by `broker demo` (never in production data).
DEMO_STAFF_EMAIL = "staff@demo.broker.local"
DEMO_STAFF_PASSWORD = "changning-demo-2026"
DEMO_STAFF_NAME = "演示：区科委工作人员 (demo staff)"
# A founder of the first verified demo startup and a person of the demo Unicom (whose adapter takes
# catalogue files), each its company's legal representative: the portal and the carrier page.
DEMO_FOUNDER_EMAIL = "founder@demo.broker.local"
DEMO_FOUNDER_PASSWORD = "changning-founder-2026"
DEMO_CARRIER_EMAIL = "carrier@demo.broker.local"
DEMO_CARRIER_PASSWORD = "changning-carrier-2026"
DEMO_CARRIER_CODE = "unicom"

CONTACTS = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷"]




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
            f"  console:    {base_url}/  (中文; English by the switch in the header)",
            f"  API:        {base_url}/api/v1/",
            f"  API docs:   {base_url}/api/docs",
            f"  OpenAPI:    {base_url}/api/openapi.json",
            f"  health:     {base_url}/healthz  {base_url}/readyz",
            f"  staff token (shown once): {self.staff_token}",
            f"  staff sign-in (console): {DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}",
            f"  founder sign-in (portal): {DEMO_FOUNDER_EMAIL} / {DEMO_FOUNDER_PASSWORD}",
            f"  carrier sign-in ({DEMO_CARRIER_CODE}): {DEMO_CARRIER_EMAIL} / {DEMO_CARRIER_PASSWORD}",
            "  a carrier's or a startup's token: broker carriers token "
            + "|".join(code for code, _, _ in CARRIERS) + ", broker startups token ID",
            f"  try:        curl -H 'Authorization: Bearer {self.staff_token}' '{base_url}/api/v1/offers?kind=gpu'",
        ]
        return "\n".join(lines)


def prepare_demo(app: Flask) -> DemoSummary:
    """Migrate, load the demo data if the database has none, sync the carriers, issue a staff token."""
    database = get_db(app)
    upgrade(database.engine)
    with app.app_context():
        session = database.sessionmaker()
        try:
            created = session.scalar(sa.select(sa.func.count(Carrier.id))) == 0
            if created:
                load_demo_data(session)
            _sync_all(app, session)
            if created:
                _load_demo_requests(session)
            _, _, staff_token = accounts.create_user(session, Role.staff, "演示：区科委工作人员 (demo staff)")
            if session.scalar(sa.select(Person.id).where(Person.email_key == normalise_email(DEMO_STAFF_EMAIL))) is None:
                people.create_district_person(session, DEMO_STAFF_EMAIL, DEMO_STAFF_NAME, Role.staff, DEMO_STAFF_PASSWORD)
            _demo_company_people(session)
            counts = {
                "carriers": _count(session, Carrier),
                "startups": _count(session, Startup),
                "offers": _count(session, Offer),
                "requests": _count(session, ResourceRequest),
            }
        finally:
            session.close()
    return DemoSummary(created, staff_token, counts, database.engine.url.render_as_string(hide_password=True))


def _demo_company_people(session: sa.orm.Session) -> None:
    """The demo founder and carrier person, made once (a second `broker demo` keeps them)."""
    if session.scalar(sa.select(Person.id).where(Person.email_key == normalise_email(DEMO_FOUNDER_EMAIL))) is None:
        startup_id = session.scalar(sa.select(Startup.id).where(Startup.status == StartupStatus.verified).order_by(Startup.id))
        name = session.scalar(sa.select(Startup.contact_name).where(Startup.id == startup_id))
        people.create_company_person(session, Side.startup, startup_id, DEMO_FOUNDER_EMAIL, f"演示：{name} (demo founder)",
                                     DEMO_FOUNDER_PASSWORD)
    if session.scalar(sa.select(Person.id).where(Person.email_key == normalise_email(DEMO_CARRIER_EMAIL))) is None:
        carrier_id = session.scalar(sa.select(Carrier.id).where(Carrier.code == DEMO_CARRIER_CODE))
        people.create_company_person(session, Side.carrier, carrier_id, DEMO_CARRIER_EMAIL, "演示：运营商对接人 (demo carrier)",
                                     DEMO_CARRIER_PASSWORD)


def _sync_all(app: Flask, session: sa.orm.Session) -> None:
    from broker.services.sync import adapter_for, sync_carrier

    adapters = app.extensions["broker.carrier_adapters"]
    for code, _name, _adapter in CARRIERS:
        if code in app.config["CARRIERS"]:
            sync_carrier(session, code, adapter_for(session, code, adapters), now(app))


# What the simulators accept with their default settings (`broker simulate --help`).
SIMULATOR_CREDENTIALS = {
    "BROKER_CARRIER_TELECOM_TOKEN": "sim-telecom-token",
    "BROKER_CARRIER_MOBILE_APP_KEY": "sim-mobile-key",
    "BROKER_CARRIER_MOBILE_APP_SECRET": "sim-mobile-secret",
    "BROKER_CARRIER_UNICOM_USERNAME": "sim-unicom",
    "BROKER_CARRIER_UNICOM_PASSWORD": "sim-unicom-password",
}

# Webhooks of the demo's accounts may go to a receiver on this machine (elsewhere only public addresses).
DEMO_WEBHOOK_ALLOWED_HOSTS = ("127.0.0.1",)

def start_simulators(app: Flask) -> list:
    """Serve each configured carrier's simulator on its 127.0.0.1 base URL, in threads."""
    import threading
    from urllib.parse import urlsplit

    from werkzeug.serving import WSGIRequestHandler, make_server

    from adapters.simulators.cli import simulator_factory

    class Quiet(WSGIRequestHandler):
        def log(self, *args: object) -> None:
            pass

    servers = []
    for code, settings in app.config["CARRIERS"].items():
        parts = urlsplit(settings.adapter.base_url)
        if parts.hostname != "127.0.0.1" or parts.port is None:
            continue  # a real carrier: nothing to simulate
        server = make_server("127.0.0.1", parts.port, simulator_factory(code)(seed=2026, offers=120), threaded=True,
                             request_handler=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True, name=f"simulator-{code}").start()
        servers.append(server)
    return servers


def start_embedded_scheduler(app: Flask):
    """The scheduler in this process, on the demo's fast schedule (one process only, as on SQLite)."""
    from scheduler.runner import Runner, build_scheduler, single_process_lock
    from scheduler.schedule import DEMO_SCHEDULES, DEMO_SYNC_CRON

    app.config["SCHEDULES"] = dict(DEMO_SCHEDULES)
    for settings in app.config["CARRIERS"].values():
        object.__setattr__(settings, "sync_schedule", DEMO_SYNC_CRON)
    lock = single_process_lock(app)
    lock.__enter__()  # held until the demo process exits
    scheduler = build_scheduler(app, Runner(app), background=True)
    scheduler.start()
    return scheduler


def _count(session: sa.orm.Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def load_demo_data(session: sa.orm.Session) -> None:
    rng = random.Random(2026)
    today = local_date(now())
    admin, _, _ = accounts.create_user(session, Role.admin, "演示：平台管理员 (demo admin)")
    staff, _, _ = accounts.create_user(session, Role.staff, "演示：区科委审核员 (demo reviewer)")
    policy = default_policy()
    policy.created_by_id = admin.id
    session.add(policy)
    year_start, year_end = dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)
    session.commit()
    document = "沪经信智〔2025〕489号"  # the city's notice on the compute and model-voucher subsidies
    common = {"mode": ProgramMode.after, "claimant": Claimant.startup, "excluded_kinds": [], "supplier_carrier_ids": None,
              "supplier_offer_ids": None, "rate_rules": [], "cap_per_allocation": None, "allotment_per_startup": None,
              "stack_group": None, "eligible_sectors": None, "require_in_district": True, "max_company_age_years": None,
              "max_headcount": None, "exclude_carrier_affiliates": True, "starts_on": year_start, "ends_on": year_end,
              "funding_document": document}
    policy_service.create_program(session, admin, {
        **common, "code": f"tokens-{today.year}", "name": "Tokens 使用及 API 调用专项补贴", "kinds": ["tokens"],
        "rate": Decimal("0.5"), "cap_per_startup": Decimal("200000"), "budget": Decimal("10000000")}, now())
    policy_service.create_program(session, admin, {
        **common, "code": f"compute-voucher-{today.year}", "name": "算力券", "kinds": ["gpu", "cpu"],
        "rate": Decimal("0.3"), "cap_per_startup": Decimal("500000"), "budget": Decimal("20000000"),
        "max_company_age_years": 5,
        # Domestic accelerators earn a higher share, as the city's compute voucher rules say.
        "rate_rules": [{"rate": "0.5", "attributes": {"gpu_model": ["910B"]}, "sectors": None, "max_company_age_years": None}]},
        now())

    for code, name, adapter in CARRIERS:
        accounts.register_carrier(session, code, name, adapter, [adapter])

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
            accounts.verify_startup(session, staff, startup.id, now())


def _load_demo_requests(session: sa.orm.Session) -> None:
    """Each verified startup asks for what its sector typically needs, next month."""
    rng = random.Random(2027)
    today = local_date(now())
    verified = session.scalars(
        sa.select(Account).join(Startup, Account.startup_id == Startup.id)
        .where(Startup.status == "verified").order_by(Account.id)
    ).all()
    for account in verified:
        for data in _demo_requests(rng, account.startup.sector, today):
            market.submit_request(session, account, data, now=now())


def _next_month_window(today: dt.date, offset_days: int, length_days: int) -> tuple[dt.date, dt.date]:
    """A window in the coming month, where the carriers' catalogues have capacity."""
    first = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    start = first + dt.timedelta(days=offset_days)
    return start, start + dt.timedelta(days=length_days)


def _demo_requests(rng: random.Random, sector: Sector, today: dt.date) -> list[dict]:
    """One or two requests in what the sector typically needs."""
    start, end = _next_month_window(today, 3, 14)
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
        "window_end": end,
        "purpose": "数据出海专线 (cross-border data line)",
    }
    vm = {
        "kind": "cloud_vm",
        "quantity": Decimal(rng.choice([64, 128, 256])),
        "regions": ["sh"],
        "attributes": {},
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
