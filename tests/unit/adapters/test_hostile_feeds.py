"""What a carrier sends can be as hostile as what a client sends: every adapter refuses it cleanly."""

from __future__ import annotations

import json

import pytest
import requests

from adapters import mobile, telecom
from adapters.base import AdapterError, CarrierConfig, RecordError
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


def test_a_catalog_row_with_nul_is_quarantined_with_its_text_escaped():
    from adapters.unicom import COLUMNS, parse_catalog

    good = ["CU1", "GPU算力", "上海", "型号=H100", "500 GPU时", "20261201", "20261231", "12 元/GPU时", "免费"]
    bad = ["CU\x002", "GPU算力", "上海", "型号=H1\x0000", *good[4:]]
    text = "\r\n".join(",".join(cells) for cells in (COLUMNS, good, bad)) + "\r\n"
    result, rows = parse_catalog(text.encode(), "catalog.csv")
    assert rows == 2 and [o.external_id for o in result.offers] == ["CU1"]
    [rejected] = result.rejected
    assert rejected.external_id == "CU\\u00002" and rejected.raw["规格"] == "型号=H1\\u000000"
    assert "NUL" in rejected.reason
    json.dumps(rejected.raw).encode("utf-8")


def test_a_usage_line_with_nul_in_its_ids_is_refused():
    from adapters.unicom import parse_usage

    with pytest.raises(RecordError, match="external_id: Must not contain NUL"):
        parse_usage({"id": "U\x001", "order_no": "O1", "out_order_no": "7", "used": "1 GPU时", "time": "20261122100000"})
