"""The carriers screen puts every quarantine reason the adapters and the feed writer give into
words (broker.web.staff_carriers.quarantine_words); only a reason nobody wrote falls through."""

from __future__ import annotations

import pytest

from broker.web.staff_carriers import quarantine_words

FALLBACK = "其他问题，见运营商原始记录和原因原文。"


@pytest.mark.parametrize(("reason", "words"), [
    ("missing field 'quantity'", "记录缺少必填字段“quantity”。"),
    ("duplicate external id 'CTC-1'; kept the first, at page 1 item 2", "资源编号在同一批数据中重复，只导入了第一条。"),
    ("external id longer than 200 characters", "资源编号缺失、过长或含有不可用的字符。"),
    ("missing external id", "资源编号缺失、过长或含有不可用的字符。"),
    ("lot CTC-1 is a divisible gpu offer; its kind and divisibility cannot change", "该编号的资源原有的类型或可拆分性被改动，这两项不能变更。"),
    ("unknown resource_type 'QUANTUM'; known: GPU, CPU", "资源类型无法识别。"),
    ("unknown 资源类型 '量子'; known: 智算", "资源类型无法识别。"),
    ("startup price 30 is above list price 28", "企业价高于挂牌价。"),
    ("list_price_fen is negative: -5", "数量或价格超出允许范围（为负数、为零或过大）。"),
    ("quantity is zero", "数量或价格超出允许范围（为负数、为零或过大）。"),
    ("quantity is not a number: 'lots'", "数量或价格不是有效的数字。"),
    ("可售数量 'x' is not a quantity of gpu", "数量或价格不是有效的数字。"),
    ("start_date '2026-13-01' is not a date YYYY-MM-DD", "供应时段的日期无效。"),
    ("window start 2026-12-31 is not before end 2026-12-01", "供应时段的日期无效。"),
    ("unit 'GB' where 'GPU-hour' was expected for gpu", "计量单位与资源类型不符。"),
    ("可售数量 '五百 GPU时' is not '<number> <unit>'", "数量或价格应写成“数字 单位”，如“500 GPU时”或“2.5 元/GPU时”。"),
    ("单价 '免费' is not '<number> 元/<unit>'", "数量或价格应写成“数字 单位”，如“500 GPU时”或“2.5 元/GPU时”。"),
    ("missing region_code", "缺少地区或地区无效。"),
    ("attribute 'gpu_model': too long", "资源规格（配置参数）无效。"),
    ("gpu_memory '80G' is not a whole number of GB", "资源规格（配置参数）无效。"),
    ("record is not an object", "记录的格式不对，无法读取。"),
    ("something nobody wrote", FALLBACK),
])
def test_each_reason_in_words(app, reason, words):
    with app.test_request_context("/"):
        assert quarantine_words(reason) == words
