"""What a carrier sends can be as hostile as what a client sends: every adapter refuses it cleanly."""

from __future__ import annotations

import pytest
import requests

from adapters import mobile, telecom
from adapters.base import AdapterError, CarrierConfig
from adapters.telecom import TelecomAdapter


def _response(content: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = "application/json"
    response._content = content
    response.url = "https://ctc.example/api/v1/resources"
    return response


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"data": ' + b"1" * 5001 + b"}"])
def test_a_carrier_answer_nested_thousands_deep_or_with_huge_numbers_is_an_adapter_error(body):
    adapter = TelecomAdapter(CarrierConfig("https://ctc.example", {"token": "T"}), environ={"T": "t"})
    with pytest.raises(AdapterError, match="unreadable JSON body"):
        adapter._json(_response(body))


@pytest.mark.parametrize("parse", [telecom.parse_webhook_body, mobile.parse_webhook_body])
@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"resources": [' + b"9" * 5000 + b"]}"])
def test_a_pushed_body_nested_thousands_deep_or_with_huge_numbers_is_an_adapter_error(parse, body):
    with pytest.raises(AdapterError, match="unreadable webhook body"):
        parse(body)
