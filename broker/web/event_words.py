"""A company's events in words: each event type as one sentence in the reader's language, built
from its payload, and the page it concerns. The in-app inbox (/inbox) shows them; the emails of
the notifications can say the same thing from here.

`sentence()` translates with the current locale: a console request's, or the one set by
`flask_babel.force_locale(person's language)` around it. An unknown type, or a payload without a
field its words need, reads as a generic sentence, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from flask_babel import gettext

from broker.web import formatting
from broker.web.guards import N_
from broker.web.reports import KIND_NAMES, UNIT_NAMES
from broker.web.formatting import quantity
from broker.web.staff_programs import EVIDENCE_NAMES


@dataclass(frozen=True)
class Words:
    """`template` (Chinese source, %(name)s placeholders) and the values it names: payload fields,
    or `what` (the allocation's kind and quantity), `money_*` (a payload amount as ¥),
    `evidence` (the evidence type's name). `reason` is a payload field added as "(reason: …)"
    when present, in `reason_words` where it is a code."""

    template: str
    fields: tuple[str, ...] = ()
    reason: str | None = None
    reason_words: Mapping[str, str] | None = None


ALLOCATION = ("allocation_id", "what")

# A clawback's reason; a refusal at approval (subsidy.refused) names the same rules by the same codes.
CLAWBACK_REASONS = {
    "false_evidence": N_("证明材料不实"), "related_party": N_("发现关联交易"), "non_use": N_("未实际使用"),
    "double_subsidy": N_("重复享受补贴"),
}
AWARD_REMOVED_REASONS = {"objection_upheld": N_("公示期异议成立")}

WORDS: dict[str, Words] = {
    # An allocation's life (the startup's and the carrier's feeds).
    "allocation.proposed": Words(N_("撮合提出分配 #%(allocation_id)s（%(what)s），等待区科委审批"), ALLOCATION),
    "allocation.approved": Words(N_("分配 #%(allocation_id)s（%(what)s）已获批准"), ALLOCATION),
    "allocation.rejected": Words(N_("分配 #%(allocation_id)s（%(what)s）未获批准"), ALLOCATION, reason="reason"),
    "allocation.lapsed": Words(N_("分配 #%(allocation_id)s（%(what)s）未在审批期限内批准，已失效"), ALLOCATION),
    "allocation.withdrawn": Words(N_("分配方案 #%(allocation_id)s（%(what)s）随申请结束而撤回"), ALLOCATION),
    "allocation.cancelled": Words(N_("分配 #%(allocation_id)s（%(what)s）已取消"), ALLOCATION, reason="reason"),
    "allocation.provisioned": Words(N_("分配 #%(allocation_id)s（%(what)s）已开通，运营商单号 %(carrier_ref)s"),
                                    (*ALLOCATION, "carrier_ref")),
    "allocation.provisioning_failed": Words(N_("分配 #%(allocation_id)s（%(what)s）开通失败，正在重试"), ALLOCATION),
    "allocation.released": Words(N_("分配 #%(allocation_id)s（%(what)s）已释放"), ALLOCATION),
    "allocation.expired": Words(N_("分配 #%(allocation_id)s（%(what)s）的使用时段已结束"), ALLOCATION),
    "allocation.expiring": Words(N_("分配 #%(allocation_id)s（%(what)s）将在 7 天内到期"), ALLOCATION),
    "request.expired": Words(N_("申请 #%(request_id)s 的使用时段已开始仍未分配，申请已过期"), ("request_id",)),
    # Appeals (诉求).
    "appeal.answered": Words(N_("区科委已答复诉求 #%(appeal_id)s"), ("appeal_id",)),
    "appeal.closed": Words(N_("诉求 #%(appeal_id)s 已结案"), ("appeal_id",)),
    # Subsidies, their evidence and public notice (公示).
    "subsidy.committed": Words(N_("已为分配 #%(allocation_id)s 承诺补贴 %(money_amount)s"), ("allocation_id", "money_amount")),
    "subsidy.award_removed": Words(N_("补贴 %(money_amount)s（%(program)s）经公示后撤销"), ("money_amount", "program"),
                                   reason="reason", reason_words=AWARD_REMOVED_REASONS),
    "subsidy.refused": Words(N_("分配 #%(allocation_id)s 未获补贴项目 %(program)s 的补贴"), ("allocation_id", "program"),
                             reason="reason", reason_words=CLAWBACK_REASONS),
    "subsidy.clawed_back": Words(N_("补贴（%(program)s）已追回 %(money_taken_back)s"), ("program", "money_taken_back"),
                                 reason="reason", reason_words=CLAWBACK_REASONS),
    "evidence.pending": Words(N_("证明材料“%(file_name)s”（%(evidence)s）等待审核"), ("file_name", "evidence")),
    "evidence.verified": Words(N_("证明材料“%(file_name)s”（%(evidence)s）已通过审核"), ("file_name", "evidence")),
    "evidence.rejected": Words(N_("证明材料“%(file_name)s”（%(evidence)s）未通过审核"), ("file_name", "evidence"),
                               reason="reason"),
    "notice.started": Words(N_("补贴公示已开始，公示期内可以提出异议")),
    # The company's registration.
    "startup.verified": Words(N_("企业注册已通过审核，可以申请资源")),
    "startup.rejected": Words(N_("企业注册未通过审核"), reason="reason"),
}

GENERIC = N_("新的动态（%(type)s）")
WITH_REASON = N_("%(sentence)s（原因：%(reason)s）")

def sentence(type_: str, payload: Mapping[str, Any], kind: str | None = None) -> str:
    """The event in one sentence; `kind` is the resource kind of the allocation it concerns."""
    words = WORDS.get(type_)
    values = _values(payload, kind)
    if words is None or any(not values.get(name) for name in words.fields):
        return gettext(GENERIC, type=type_)
    said = gettext(words.template, **{name: values[name] for name in words.fields})
    reason = payload.get(words.reason) if words.reason else None
    if not reason:
        return said
    if words.reason_words is not None and reason in words.reason_words:
        reason = gettext(words.reason_words[reason])
    return gettext(WITH_REASON, sentence=said, reason=reason)


def _values(payload: Mapping[str, Any], kind: str | None) -> dict[str, str]:
    values = {name: str(value) for name, value in payload.items() if value is not None and value != ""}
    for name, value in payload.items():
        amount = _decimal(value)
        if amount is not None:
            values[f"money_{name}"] = formatting.money(amount)
    amount = _decimal(payload.get("quantity"))
    if amount is not None:
        values["what"] = (" ".join((gettext(KIND_NAMES[kind]), quantity(amount), gettext(UNIT_NAMES[kind])))
                          if kind in KIND_NAMES else quantity(amount))
    if payload.get("evidence_type") in EVIDENCE_NAMES:
        values["evidence"] = gettext(EVIDENCE_NAMES[payload["evidence_type"]])
    return values


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def target(payload: Mapping[str, Any], side: str) -> tuple[str, dict[str, Any]] | None:
    """(endpoint, its arguments) of the page the event concerns for a company of `side`
    ("startup" or "carrier"), or None; pages not built yet are never linked."""
    if side == "carrier":
        found = (("carrier_allocations.allocations", {"_anchor": f"allocation-{payload['allocation_id']}"})
                 if _is_id(payload.get("allocation_id")) else None)
    elif _is_id(payload.get("appeal_id")):
        found = ("portal_appeals.appeal", {"appeal_id": payload["appeal_id"]})
    elif _is_id(payload.get("allocation_id")):
        found = ("portal_requests.allocation", {"allocation_id": payload["allocation_id"]})
    elif _is_id(payload.get("request_id")):
        found = ("portal_requests.request_detail", {"request_id": payload["request_id"]})
    else:
        found = None
    return found if found is not None and found[0] in current_app.view_functions else None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
