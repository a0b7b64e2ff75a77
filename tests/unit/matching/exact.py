"""An exact MILP of the matching problem, for checking the engine on small instances.

Written from DESIGN.md's semantics with highspy's modelling layer, independently of the
engine's own LP.
"""

from __future__ import annotations

import highspy

from .checker import compatible


def optimum(inst) -> float:
    """The best objective any feasible answer can reach."""
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    offers = list(inst.offers)
    startups = {s.id: s for s in inst.startups}
    pairs = [(r, o) for r in inst.requests for o in offers if compatible(r, o, startups[r.startup].price_of(o))]
    x = {(r.id, o.id): h.addVariable(lb=0.0) for r, o in pairs}
    z = {(r.id, o.id): h.addBinary() for r, o in pairs if not _divisible(o)}
    served = {r.id: h.addBinary() for r in inst.requests}
    objective = 0
    for r in inst.requests:
        mine = [(rr, o) for rr, o in pairs if rr.id == r.id]
        if not mine:
            continue
        total = sum(x[r.id, o.id] for _, o in mine)
        wholes = [z[r.id, o.id] for _, o in mine if not _divisible(o)]
        h.addConstr(total <= r.quantity * served[r.id])
        h.addConstr(total >= (r.min_quantity or 0.0) * served[r.id])
        for _, o in mine:
            if not _divisible(o):
                h.addConstr(x[r.id, o.id] == r.quantity * z[r.id, o.id])
        if wholes:
            divisible_total = sum((x[r.id, o.id] for _, o in mine if _divisible(o)), 0.0)
            h.addConstr(sum(wholes) <= 1)
            # a whole grant leaves no room for any other allocation of the request
            h.addConstr(divisible_total + r.quantity * sum(wholes) <= r.quantity)
        objective = objective + (r.weight / r.quantity) * total
    for o in offers:
        users = [x[r.id, o.id] for r, oo in pairs if oo.id == o.id]
        if users:
            h.addConstr(sum(users) <= o.available)
    supply = {}
    for o in offers:
        supply[o.kind] = supply.get(o.kind, 0.0) + o.available
    if inst.policy.share_cap is not None:
        for s in inst.startups:
            for kind in supply:
                mine = [x[r.id, o.id] for r, o in pairs if r.startup == s.id and r.kind == kind]
                if mine:
                    h.addConstr(sum(mine) <= inst.policy.share_cap * supply[kind])
    for s in inst.startups:
        mine = [(r, o) for r, o in pairs if r.startup == s.id and s.price_of(o) > 0]
        if s.budget is not None and mine:
            h.addConstr(sum(s.price_of(o) * x[r.id, o.id] for r, o in mine) <= s.budget)
    if not pairs:
        return 0.0
    h.maximize(objective)
    return h.getInfo().objective_function_value


def _divisible(offer) -> bool:
    return offer.divisible and offer.kind != "data_line"
