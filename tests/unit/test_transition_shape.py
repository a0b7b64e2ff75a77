"""The shape of state changes, read from the source (issue 10; STYLE.md examples 5 and 5b).

- A status is set only inside a model method (broker/models/): never `x.status = …` elsewhere.
- Allocation capacity (`Offer.promised`) and allocation events are written only by
  broker/services/allocations.py, which pairs them with the transition.
- No hand-written `try: … except: session.rollback(); raise`: broker.db.unit_of_work does it.

Each check is a function over source text, so the tests below also show it failing on a
planted violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("broker", "scheduler", "adapters")
MODELS = ROOT / "broker" / "models"
ALLOCATIONS = ROOT / "broker" / "services" / "allocations.py"

# Lifecycle fields: their value is the state of a row.
STATE_FIELDS = frozenset({"status", "outcome"})

# The bulk form of Offer.withdraw that a full pull applies to offers missing from its feed
# (set-based: one UPDATE, not one method call per row). Recognised by what it writes, not by
# where it stands, so the sync split can move it.
SET_BASED_ALLOWED = {("status", "OfferStatus.withdrawn"): "withdrawn_by=WithdrawnBy.sync"}

# broker.db.unit_of_work is the one place the "rollback, then raise" pattern is written.
HAND_WRITTEN_ROLLBACK_ALLOWED = frozenset({"unit_of_work"})


def _sources(*, outside: tuple[Path, ...] = ()) -> list[tuple[str, str]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts or any(path == o or o in path.parents for o in outside):
                continue
            found.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    assert len(found) > 30, "the source tree was not found"
    return found


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    else:
        return []
    flat = []
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        else:
            flat.append(target)
    return flat


def _functions_with_self_init(tree: ast.AST) -> set[int]:
    """Line numbers of statements inside an `__init__`: an object setting its own fields as it is
    built (an exception's HTTP status, say) is no transition."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            lines.update(n.lineno for n in ast.walk(node) if hasattr(n, "lineno"))
    return lines


def status_assignments(name: str, source: str) -> list[str]:
    """Every place `source` sets a lifecycle field other than through a model method."""
    tree = ast.parse(source, name)
    in_init = _functions_with_self_init(tree)
    found = []
    for node in ast.walk(tree):
        for target in _targets(node):
            if isinstance(target, ast.Attribute) and target.attr in STATE_FIELDS:
                if node.lineno in in_init and isinstance(target.value, ast.Name) and target.value.id == "self":
                    continue
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Attribute, ast.Name)):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        if func == "setattr" and len(node.args) >= 2:
            field = node.args[1]
            # A field named by a variable (update_startup's schema-bounded changes) is not read here.
            if isinstance(field, ast.Constant) and field.value in STATE_FIELDS:
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
        if func == "values":  # a Core UPDATE/INSERT … .values(status=…)
            for keyword in node.keywords:
                if keyword.arg in STATE_FIELDS:
                    allowed = SET_BASED_ALLOWED.get((keyword.arg, ast.unparse(keyword.value)))
                    if allowed is None or allowed not in ast.unparse(node).replace(" ", ""):
                        found.append(f"{name}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def allocation_side_effects(name: str, source: str) -> list[str]:
    """Every write of an offer's promised capacity and every allocation event in `source`."""
    tree = ast.parse(source, name)
    found = []
    for node in ast.walk(tree):
        for target in _targets(node):
            if isinstance(target, ast.Attribute) and target.attr == "promised":
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "values" and any(k.arg == "promised" for k in node.keywords):
            found.append(f"{name}:{node.lineno}: .values(promised=…)")
        if node.func.attr.startswith("record"):  # events.record, events.record_for_allocations
            types = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if any(t.startswith("allocation.") for t in types):
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def _is_rollback(statement: ast.stmt) -> bool:
    call = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "rollback"


def hand_written_rollbacks(name: str, source: str) -> list[str]:
    """Every block in `source` that rolls back and then raises (`except: rollback; raise`, or
    `if problems: rollback; raise`): the pattern unit_of_work makes structural."""
    tree = ast.parse(source, name)
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if function.name in HAND_WRITTEN_ROLLBACK_ALLOWED:
            continue
        for node in ast.walk(function):
            for field in ("body", "orelse", "finalbody", "handlers"):
                body = getattr(node, field, None)
                if not isinstance(body, list):
                    continue
                for statement, following in zip(body, body[1:]):
                    if isinstance(statement, ast.stmt) and _is_rollback(statement) and isinstance(following, ast.Raise):
                        found.append(f"{name}:{statement.lineno}: in {function.name}")
    return sorted(set(found))


# Use cases that commit once but cannot be one @transaction: submit_request recovers from its
# own commit's IntegrityError (a twin request's replay); run_cycle's dry run ends in a rollback.
# Use cases that commit several times do so by design (a carrier or a receiver is called
# between two short transactions) and are not looked at.
SINGLE_COMMIT_ALLOWED = frozenset({"submit_request", "run_cycle"}) | HAND_WRITTEN_ROLLBACK_ALLOWED


def single_commit_use_cases(name: str, source: str) -> list[str]:
    """Every function in `source` that commits exactly once without being a @transaction."""
    found = []
    for function in ast.walk(ast.parse(source, name)):
        if not isinstance(function, ast.FunctionDef) or function.name in SINGLE_COMMIT_ALLOWED:
            continue
        commits = [
            n for n in ast.walk(function)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "commit" and not n.args
            and isinstance(n.func.value, ast.Name) and n.func.value.id == "session"
        ]
        if len(commits) == 1 and "transaction" not in {ast.unparse(d) for d in function.decorator_list}:
            found.append(f"{name}:{function.lineno}: {function.name}")
    return found


def test_a_use_case_that_commits_once_is_a_transaction():
    services = [(n, s) for n, s in _sources() if n.startswith("broker/services/")]
    found = [hit for name, source in services for hit in single_commit_use_cases(name, source)]
    assert not found, "decorate with @broker.db.transaction instead of committing by hand:\n" + "\n".join(found)


def test_the_transaction_check_sees_a_hand_committed_use_case():
    source = "def use_case(session):\n    session.add(thing)\n    session.commit()\n    return thing\n"
    assert single_commit_use_cases("planted.py", source)
    assert not single_commit_use_cases("ok.py", "@transaction\n" + source)


def test_no_status_is_assigned_outside_a_model_method():
    found = [hit for name, source in _sources(outside=(MODELS,)) for hit in status_assignments(name, source)]
    assert not found, "set these through a named model method:\n" + "\n".join(found)


def test_no_allocation_capacity_or_event_outside_the_allocations_service():
    found = [
        hit for name, source in _sources(outside=(MODELS, ALLOCATIONS)) for hit in allocation_side_effects(name, source)
    ]
    assert not found, "call broker.services.allocations instead:\n" + "\n".join(found)


def test_the_allocations_service_is_where_capacity_and_events_are_written():
    # Else the test above would pass on a tree where the check sees nothing at all.
    assert len(allocation_side_effects("allocations.py", ALLOCATIONS.read_text(encoding="utf-8"))) >= 3


def test_no_hand_written_rollback_and_raise():
    found = [hit for name, source in _sources() for hit in hand_written_rollbacks(name, source)]
    assert not found, "use broker.db.unit_of_work:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "planted",
    [
        "allocation.status = AllocationStatus.approved",
        "delivery.status, delivery.last_error = DeliveryStatus.failed, error",
        "run.outcome = 'ok'",
        "setattr(offer, 'status', OfferStatus.active)",
        "session.execute(sa.update(Offer).values(status=OfferStatus.active))",
        "session.execute(sa.update(Offer).values(status=OfferStatus.withdrawn, withdrawn_by=WithdrawnBy.carrier))",
    ],
)
def test_the_status_check_sees_a_planted_assignment(planted):
    assert status_assignments("planted.py", f"def use_case(session):\n    {planted}\n")


def test_the_status_check_lets_models_being_built_and_the_sync_bulk_withdrawal_through():
    source = (
        "class AdapterError(Exception):\n    def __init__(self, status):\n        self.status = status\n"
        "sa.update(t).values(status=OfferStatus.withdrawn, withdrawn_by=WithdrawnBy.sync, quantity=t.c.promised)\n"
        "CarrierSync(status=SyncStatus.running)\n"
    )
    assert status_assignments("ok.py", source) == []


@pytest.mark.parametrize(
    "planted",
    [
        "offer.promised -= allocation.quantity",
        "session.execute(sa.update(Offer).values(promised=Offer.promised - q))",
        "events.record(session, 'allocation.rejected', allocation, 1, 2, now)",
        "events.record_for_allocations(session, 'allocation.lapsed', proposals, now)",
    ],
)
def test_the_side_effect_check_sees_a_planted_write(planted):
    assert allocation_side_effects("planted.py", f"def use_case(session):\n    {planted}\n")


@pytest.mark.parametrize(
    "planted",
    [
        "    try:\n        session.commit()\n    except BaseException:\n        session.rollback()\n        raise\n",
        "    if problems:\n        session.rollback()\n        raise InvalidInput('nothing was changed')\n",
    ],
)
def test_the_rollback_check_sees_a_planted_block(planted):
    assert hand_written_rollbacks("planted.py", f"def use_case(session):\n{planted}")
    # A rollback that recovers (ends a read, logs and goes on) is not the pattern.
    recovering = planted.replace("raise\n", "log.warning('x')\n").replace("raise InvalidInput", "log.warning")
    assert not hand_written_rollbacks("ok.py", f"def use_case(session):\n{recovering}")
