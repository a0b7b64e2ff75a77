"""What of a carrier's access details the broker keeps: mapped, bounded, display-safe fields only."""

from __future__ import annotations

import logging

import pytest

from adapters.base import AccessDetails

NAMES = {"api": "endpoint", "console": "console_url", "user": "username", "guide": "instructions",
         "circuit": "circuit_id"}


def test_mapped_fields_are_kept_trimmed_and_the_rest_dropped() -> None:
    details = AccessDetails.from_carrier(
        {"api": " https://maas.example/v1 ", "user": "cuuser", "colour": "blue", "circuit": "CKT-1"},
        NAMES, carrier="sim")
    assert details == AccessDetails(endpoint="https://maas.example/v1", username="cuuser", circuit_id="CKT-1")
    assert details.stored() == {"endpoint": "https://maas.example/v1", "username": "cuuser", "circuit_id": "CKT-1"}


@pytest.mark.parametrize("key", ["api_key", "initial_password", "SecretKey", "AccessKey", "初始密码", "token"])
def test_a_secret_is_never_kept_but_noted_so_the_page_points_to_the_console(key: str) -> None:
    details = AccessDetails.from_carrier({"user": "root", key: "hunter2-the-secret"}, NAMES, carrier="sim")
    assert details.secret_at_carrier is True
    assert "hunter2-the-secret" not in repr(details) and "hunter2-the-secret" not in str(details.stored())
    assert details.stored() == {"username": "root", "secret_at_carrier": True}
    # A secret alone still says where to get it.
    assert AccessDetails.from_carrier({key: "x"}, NAMES, carrier="sim").stored() == {"secret_at_carrier": True}


@pytest.mark.parametrize("url, reason", [
    ("javascript:alert(1)", "not an http(s) URL"),
    ("ftp://files.example/x", "not an http(s) URL"),
    ("https://", "not an http(s) URL"),
    ("https://root:pw@console.example/", "user name or password"),
    ("https://console.example/" + "a" * 300, "longer than 300"),
    ("https://console.example/\nSet-Cookie: x", "control characters"),
])
def test_a_bad_url_is_dropped_and_logged_without_its_value(url: str, reason: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.base"):
        details = AccessDetails.from_carrier({"console": url, "user": "root"}, NAMES, carrier="sim")
    assert details == AccessDetails(username="root")
    assert reason in caplog.text and "console_url" in caplog.text and "sim:" in caplog.text
    assert url not in caplog.text


def test_oversized_or_non_text_values_are_dropped_and_nothing_left_is_none(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.base"):
        assert AccessDetails.from_carrier({"user": "u" * 201, "guide": 42, "circuit": "  "}, NAMES,
                                          carrier="sim") is None
    assert "longer than 200" in caplog.text and "not a non-empty text" in caplog.text
    assert AccessDetails.from_carrier({"guide": "长" * 500}, NAMES, carrier="sim").instructions == "长" * 500
    assert AccessDetails.from_carrier({"guide": "长" * 501}, NAMES, carrier="sim") is None


@pytest.mark.parametrize("raw", [None, [], "https://x.example", 7])
def test_an_answer_without_an_object_of_details_gives_none(raw) -> None:
    assert AccessDetails.from_carrier(raw, NAMES, carrier="sim") is None
