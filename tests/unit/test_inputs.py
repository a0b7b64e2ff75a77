"""The edge rules of broker.inputs: JSON depth and number length read lexically, and the text rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.inputs import (
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    InputLimitError,
    json_limit_error,
    loads,
    scrub,
    text_problem,
    text_problems,
)

_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(
    alphabet=st.sampled_from('ab"\\[]{},:0123456789.-e 上'), max_size=8)
_json = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='k"[{\\,', max_size=4), inner, max_size=3),
    max_leaves=40,
)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _longest_number(value) -> int:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return 0
    if isinstance(value, (int, float)):
        mantissa = json.dumps(value).lstrip("-").split("e")[0].split("E")[0]
        return len(mantissa.replace(".", ""))
    children = value.values() if isinstance(value, dict) else value
    return max((_longest_number(v) for v in children), default=0)


def _nest(value, levels: int):
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_json, st.integers(0, 40), st.integers(0, 60))
def test_the_lexical_reading_agrees_with_the_parsed_document(value, extra_levels, big_digits):
    value = _nest([value, int("7" * big_digits) if big_digits else 0], extra_levels)
    text = json.dumps(value, ensure_ascii=False)
    error = json_limit_error(text)
    too_deep = _depth(value) > MAX_JSON_DEPTH
    too_long = _longest_number(value) > MAX_NUMBER_DIGITS
    assert (error is not None) == (too_deep or too_long), (text[:200], error)
    if error is None:
        assert loads(text) == json.loads(text)


def test_a_thousand_brackets_are_refused_without_recursion():
    error = json_limit_error("[" * 100_000 + "]" * 100_000)
    assert isinstance(error, InputLimitError) and error.path == (0,) * 8
    with pytest.raises(InputLimitError):
        loads(b"[" * 5000)


def test_the_error_names_where_in_the_document_it_is():
    body = {"offers": [{"external_id": "a"}, {"quantity": int("1" * 50), "attributes": {}}]}
    error = json_limit_error(json.dumps(body))
    assert error.path == ("offers", 1, "quantity")
    assert error.errors() == {"offers": {1: {"quantity": ["A number of 50 digits; at most 40 are accepted."]}}}
    nested = json_limit_error(json.dumps({"a": {"b": _nest(1, 40)}}))
    assert nested.path[:2] == ("a", "b") and len(nested.path) == 8


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fine 上海 😀", None),
        ("a\x00b", "NUL"),
        ("\ud800", "surrogate"),
        ("x\udfffy", "surrogate"),
    ],
)
def test_the_text_rule(text, problem):
    found = text_problem(text)
    assert (found is None) if problem is None else (problem in found)


def test_text_problems_nest_as_marshmallow_errors_and_scrub_names():
    data = {"purpose": "ok", "regions": ["sh", "a\x00"], "attributes": {"gpu_model": ["\ud800"], "bad\x00key": 1}}
    assert text_problems(data) == {
        "regions": {1: ["Must not contain NUL characters."]},
        "attributes": {
            "gpu_model": {0: ["Must not contain unpaired surrogates (U+D800-U+DFFF): not valid Unicode text."]},
            "bad\\u0000key": ["The field name: Must not contain NUL characters."],
        },
    }
    assert text_problems({"a": ["b", {"c": 1}]}) is None


def test_scrub_writes_what_cannot_be_stored_as_escapes():
    assert scrub("H1\x0000") == "H1\\u000000"
    assert scrub("a\ud800b") == "a\\ud800b"
    assert scrub("上海 😀") == "上海 😀"
    scrub("\ud800").encode("utf-8")  # storable
