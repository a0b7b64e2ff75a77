"""Pure rules: the credit code, exact decimals, settings."""

from decimal import Decimal

import pytest
from marshmallow import ValidationError

from broker.db import ScaledDecimal
from broker.schemas.fields import Exact
from broker.uscc import check_character, uscc_problem
from config import ConfigurationError, load_settings


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000802100433B"])
def test_published_credit_codes_are_valid(code):
    assert uscc_problem(code) is None


def test_credit_code_check_character_is_checked():
    good = "91110000802100433B"
    assert "Check character" in uscc_problem(good[:-1] + "C")
    assert "18 characters" in uscc_problem(good[:-1])
    assert "not allowed" in uscc_problem("91110000802100433I")


def test_check_character_round_trips_every_body_position():
    body = "9131010500000000"
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        code = body + c + check_character(body + c)
        assert uscc_problem(code) is None


def test_scaled_decimal_is_exact_and_refuses_extra_places():
    t = ScaledDecimal(3)
    assert t.process_bind_param(Decimal("0.1"), None) == 100
    assert t.process_result_value(100, None) == Decimal("0.100")
    assert t.process_bind_param(Decimal("123456789.123"), None) == 123456789123
    with pytest.raises(ValueError):
        t.process_bind_param(Decimal("0.0001"), None)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "Must be a number."),
        (True, "Must be a number."),
        ("NaN", "finite"),
        (0, "greater than 0"),
        (-1, "greater than 0"),
        ("1.2345", "At most 3 decimal places"),
        (10**13, "at most"),
        ("1e40", "at most"),
    ],
)
def test_exact_field_rejects_with_a_reason(raw, message):
    field = Exact(3, Decimal(0), Decimal(10**12), exclusive_minimum=True)
    with pytest.raises(ValidationError) as error:
        field.deserialize(raw)
    assert message in str(error.value)


def test_exact_field_reads_floats_by_their_shortest_form():
    field = Exact(3, Decimal(0), Decimal(10**12), exclusive_minimum=True)
    assert field.deserialize(0.1) == Decimal("0.100")
    assert field.deserialize("250") == Decimal("250.000")
    assert field.serialize("q", {"q": Decimal("1.500")}) == "1.500"


def test_development_needs_no_settings():
    settings = load_settings({})
    assert settings["BROKER_ENV"] == "development"


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"BROKER_ENV": "production"}, ["BROKER_SECRET_KEY", "BROKER_DATABASE_URL is not set"]),
        ({"BROKER_ENV": "production", "BROKER_SECRET_KEY": "k"}, ["BROKER_DATABASE_URL is not set"]),
        (
            {"BROKER_ENV": "production", "BROKER_SECRET_KEY": "k", "BROKER_DATABASE_URL": "sqlite:///x.db"},
            ["points at SQLite"],
        ),
    ],
)
def test_production_refuses_to_start_naming_what_is_missing(environ, missing):
    with pytest.raises(ConfigurationError) as error:
        load_settings(environ)
    for phrase in missing:
        assert phrase in str(error.value)


def test_production_starts_with_secret_and_postgres():
    settings = load_settings(
        {"BROKER_ENV": "production", "BROKER_SECRET_KEY": "k", "BROKER_DATABASE_URL": "postgresql+psycopg://db/broker"}
    )
    assert settings["SECRET_KEY"] == "k"


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigurationError, match="BROKER_ENV"):
        load_settings({"BROKER_ENV": "staging"})
