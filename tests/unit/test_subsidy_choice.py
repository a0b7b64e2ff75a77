"""The choice of program (从优不重复) and the ledger's one rule for what a row moves: pure functions."""

from decimal import Decimal

import pytest

from broker.errors import Conflict
from broker.models import LedgerKind, StackGroup, SubsidyProgram
from broker.models.ledger import moves
from broker.services.subsidies import Candidate, best_rate, choose

D = Decimal


def test_the_single_program_that_pays_most_wins_whatever_its_age():
    assert choose([Candidate(1, D("200")), Candidate(2, D("400")), Candidate(3, D("300"))], D("1000")) == [(2, D("400"))]


def test_ties_go_to_the_lower_id_every_time():
    assert choose([Candidate(5, D("400")), Candidate(2, D("400"))], D("1000")) == [(2, D("400"))]


def test_a_stack_pays_within_its_combined_cap_and_beats_a_single_only_when_it_pays_more():
    city, district = Candidate(1, D("300"), 7, D("0.6")), Candidate(2, D("500"), 7, D("0.6"))
    assert choose([city, district], D("1000")) == [(1, D("100")), (2, D("500"))]  # the larger share first
    assert choose([city, district, Candidate(3, D("650"))], D("1000")) == [(3, D("650"))]
    assert choose([city, district, Candidate(3, D("600"))], D("1000")) == [(3, D("600"))]  # a tie: fewer programs


def test_programs_of_different_groups_never_stack():
    assert choose([Candidate(1, D("300"), 1, D("1")), Candidate(2, D("500"), 2, D("1"))], D("1000")) == [(2, D("500"))]


def _program(pid, group=None):
    return SubsidyProgram(id=pid, code=f"p{pid}", stack_group=group, stack_group_id=None if group is None else group.id)


def test_the_rate_the_engine_sees_is_the_best_single_rate_or_a_stack_within_its_cap():
    group = StackGroup(id=7, code="city-district", name="市区协同", combined_cap=D("0.6"))
    city, district, solo = _program(1, group), _program(2, group), _program(3)
    programs = [city, district, solo]
    assert best_rate(programs, {1: D("0.3"), 2: D("0.5"), 3: D("0.55")}) == D("0.6")  # the stack, at its cap
    assert best_rate(programs, {1: D("0.3"), 3: D("0.55")}) == D("0.55")  # one member alone is no stack
    assert best_rate(programs, {1: D("0.1"), 2: D("0.2"), 3: D("0.55")}) == D("0.55")
    assert best_rate(programs, {}) == D("0")


def test_nothing_to_pay_is_no_award():
    assert choose([Candidate(1, D("0")), Candidate(2, D("-1"))], D("1000")) == []
    assert choose([], D("1000")) == []


@pytest.mark.parametrize(("kind", "target", "on_award", "expected"), [
    (LedgerKind.deposit, None, False, {"budget": D(5)}),
    (LedgerKind.commit, None, True, {"committed": D(5)}),
    (LedgerKind.redeem, None, True, {"redeemed": D(5)}),
    (LedgerKind.write_off, None, True, {"written_off": D(5)}),
    (LedgerKind.reverse, LedgerKind.commit, True, {"committed": D(-5)}),
    (LedgerKind.reverse, LedgerKind.deposit, False, {"budget": D(-5)}),
    (LedgerKind.adjust, None, True, {"committed": D(5), "redeemed": D(5)}),
    (LedgerKind.adjust, None, False, {"budget": D(5)}),
])
def test_what_each_row_moves(kind, target, on_award, expected):
    assert moves(kind, D(5), target_kind=target, on_award=on_award) == expected


def test_an_adjustment_is_not_reversed_but_adjusted_again():
    with pytest.raises(Conflict, match="post an adjustment"):
        moves(LedgerKind.reverse, D(5), target_kind=LedgerKind.adjust)
