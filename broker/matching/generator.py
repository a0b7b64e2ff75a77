"""Seeded synthetic instances that look like the district's queue, for the benchmark and tests.

3–5 carriers, all six kinds, a dozen regions; GPUs scarce and tokens plentiful; a third of
the requests with a minimum; data lines granted whole; a few large startups whose share cap
binds and small budgets that bind for some. The same (sizes, seed) always gives the same
instance.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from broker.clock import SHANGHAI

from .model import Instance, Offer, Policy, Request, Startup

CARRIERS = ("ctc", "cmcc", "cucc", "aliyun", "gds")
REGIONS = (
    "sh-changning", "sh-minhang", "sh-pudong", "sh-xuhui", "sh-jingan", "sh-qingpu",
    "sh-lingang", "js-suzhou", "zj-hangzhou", "ah-wuhu", "gz-guian", "nm-hohhot",
)
# kind: (share of requests, supply ÷ demand, typical quantity, base unit price)
KIND_PROFILE = {
    "gpu": (0.22, 0.35, 400.0, 12.0),
    "cpu": (0.15, 1.2, 2000.0, 0.2),
    "data_line": (0.08, 0.6, 100.0, 30.0),
    "cloud_vm": (0.17, 0.9, 64.0, 40.0),
    "storage": (0.13, 1.4, 20.0, 80.0),
    "tokens": (0.25, 3.0, 500.0, 2.0),
}
ATTRIBUTES = {
    "gpu": {"gpu_model": ["A100", "H100", "910B", "L40S"], "gpu_memory_gb": [40, 48, 64, 80]},
    "cpu": {"arch": ["x86_64", "aarch64"]},
    "data_line": {
        "a_end": ["changning-dc1", "changning-dc2", "hongqiao-dc"],
        "z_end": ["hk-ix", "sg-equinix", "pudong-ix", "suzhou-dc"],
        "cross_border": ["yes", "no"],
    },
    "cloud_vm": {"flavor": ["c7.large", "c7.xlarge", "g7.2xlarge", "m7.large"],
                 "os": ["ubuntu-22.04", "centos-7", "windows-2022"]},
    "storage": {"tier": ["standard", "infrequent", "archive", "ssd"]},
    "tokens": {"model": ["qwen-max", "deepseek-v3", "glm-4", "ernie-4"]},
}
_CYCLE_START = date(2026, 12, 1)


def generate(n_requests: int, n_offers: int, seed: int = 0) -> Instance:
    """A district-like instance with `n_requests` requests and `n_offers` offers."""
    rng = np.random.default_rng(seed)
    # A bigger market has more distinct products (models, flavours, sites): the first attribute
    # of each kind gets more values as the market grows, so that a request stays compatible
    # with a few dozen lots rather than with a fixed share of all of them.
    variety = max(1, int(round(n_offers / 1000)))
    attribute_values = {
        kind: {
            name: (
                [v if copy == 0 else _variant(v, copy) for copy in range(variety) for v in values]
                if position == 0
                else values
            )
            for position, (name, values) in enumerate(attrs.items())
        }
        for kind, attrs in ATTRIBUTES.items()
    }
    carriers = CARRIERS[: 3 + int(rng.integers(0, 3))]
    n_startups = max(2, n_requests // 8)
    # Startup activity is heavy-tailed: a few large startups make many of the requests.
    activity = rng.pareto(1.2, n_startups) + 1.0
    activity /= activity.sum()
    kinds = list(KIND_PROFILE)
    request_share = np.array([KIND_PROFILE[k][0] for k in kinds])
    offer_share = np.array([KIND_PROFILE[k][0] * KIND_PROFILE[k][1] for k in kinds])

    requests = []
    demand = {k: 0.0 for k in kinds}
    startup_of = rng.choice(n_startups, size=n_requests, p=activity)
    kind_of = rng.choice(len(kinds), size=n_requests, p=request_share)
    for i in range(n_requests):
        kind = kinds[kind_of[i]]
        _, _, typical, base_price = KIND_PROFILE[kind]
        quantity = float(round(typical * rng.lognormal(0.0, 0.7), 1 if kind != "data_line" else -1))
        quantity = max(quantity, 10.0 if kind == "data_line" else 1.0)
        demand[kind] += quantity
        min_quantity = None
        if kind != "data_line" and rng.random() < 1 / 3:
            min_quantity = float(round(quantity * rng.uniform(0.2, 0.9), 1)) or None
        regions = None
        if rng.random() < (0.6 if kind == "gpu" else 0.85):
            count = 1 + int(rng.integers(0, 2))
            regions = tuple(sorted(rng.choice(REGIONS, size=count, replace=False).tolist()))
        attributes = {}
        for position, (name, values) in enumerate(attribute_values[kind].items()):
            if position == 0 or rng.random() < 0.3:
                count = 1 + int(rng.integers(0, 2))
                picked = rng.choice(len(values), size=count, replace=False)
                attributes[name] = tuple(values[j] for j in sorted(picked))
        start = _CYCLE_START + timedelta(days=int(rng.integers(0, 20)))
        end = min(start + timedelta(days=int(rng.integers(3, 30))), date(2026, 12, 31))
        max_price = None
        if rng.random() < 0.4:
            max_price = float(round(base_price * rng.uniform(0.6, 1.6), 2))
        lighthouse = rng.random() < 0.2
        waited = int(rng.integers(0, 4))
        weight = round(1.0 + 0.5 * lighthouse + 0.5 * (rng.random() < 0.05) + 0.1 * waited, 2)
        submitted = datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI) + timedelta(
            minutes=int(rng.integers(0, 60 * 24 * 28))
        )
        requests.append(
            Request(
                id=f"r{i:07d}",
                startup=f"s{startup_of[i]:06d}",
                kind=kind,
                quantity=quantity,
                min_quantity=min_quantity,
                regions=regions,
                attributes=attributes,
                max_unit_price=max_price,
                window=(start, end),
                weight=weight,
                submitted_at=submitted,
            )
        )

    offers = []
    kind_counts = rng.multinomial(n_offers - len(kinds), offer_share / offer_share.sum()) + 1
    number = 0
    for k, kind in enumerate(kinds):
        _, ratio, typical, base_price = KIND_PROFILE[kind]
        count = int(kind_counts[k])
        sizes = rng.lognormal(0.0, 0.8, count)
        sizes *= demand[kind] * ratio / max(sizes.sum(), 1e-9)
        for j in range(count):
            carrier = carriers[int(rng.integers(0, len(carriers)))]
            attributes = {
                name: values[int(rng.integers(0, len(values)))]
                for name, values in attribute_values[kind].items()
            }
            # A data line is a line of a given bandwidth: lots are a few times a request.
            available = float(round(sizes[j], 1 if kind != "data_line" else -1))
            if kind == "data_line":
                available = max(available, typical)
            start = _CYCLE_START - timedelta(days=int(rng.integers(0, 10)))
            if rng.random() < 0.7:
                end = date(2026, 12, 31)
            else:
                end = _CYCLE_START + timedelta(days=int(rng.integers(10, 31)))
            free = rng.random() < 0.15
            price = 0.0 if free else float(round(base_price * rng.uniform(0.5, 1.5), 2))
            offers.append(
                Offer(
                    id=f"o{number:06d}",
                    carrier=carrier,
                    kind=kind,
                    region=REGIONS[int(rng.integers(0, len(REGIONS)))],
                    attributes=attributes,
                    available=available,
                    unit_price=price,
                    window=(start, end),
                )
            )
            number += 1

    startups = []
    for s in range(n_startups):
        # Some small budgets bind; most startups have none or a generous one.
        draw = rng.random()
        if draw < 0.25:
            budget = float(round(rng.uniform(500, 8000), 2))
        elif draw < 0.6:
            budget = float(round(rng.uniform(10_000, 200_000), 2))
        else:
            budget = None
        startups.append(Startup(id=f"s{s:06d}", budget=budget))
    # The cap is set so the largest startups, not the typical one, run into it.
    share_cap = float(min(0.5, max(0.002, 4.0 / n_startups)))
    return Instance(Policy(share_cap=round(share_cap, 4)), tuple(startups), tuple(offers), tuple(requests))


def _variant(value: str | int, copy: int) -> str | int:
    return value + copy * 1000 if isinstance(value, int) else f"{value}-{copy}"
