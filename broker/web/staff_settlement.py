"""Public notices (公示) and settlement statements (结算单) for district staff, reached from the
subsidy programs screen (not in the nav).

`/staff/notices` lists notices and freezes a new batch; `/staff/notices/<id>` shows its items and
objections, answers each, and finalises it when due. `/staff/statements` lists statements and builds
one; `/staff/statements/<id>` lays one out as `broker ledger statement` prints it and takes the
approvals (four eyes), with its spreadsheet at `/staff/statements/<id>.xlsx`.

Thin views: forms are loaded with the API's schemas and go to the same service functions as the
API; the schema's and the services' refusals are put in words here, per field.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, send_file, session, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from broker import workdays
from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from broker.models.notices import MAX_ANSWER, MAX_BATCH, MAX_WORKING_DAYS
from broker.schemas.notices import AnswerInSchema, NoticeInSchema
from broker.schemas.settlement import ApprovalInSchema, StatementInSchema
from broker.services import notices, settlement, settlement_pages
from broker.web.auth import current_person
from broker.web.errors import error_page
from broker.web.formatting import local, money
from broker.web.guards import staff_only

bp = Blueprint("staff_settlement", __name__, template_folder="templates")

PAGE_SIZE = 50
LINES_PER_PAGE = 100  # a statement's lines: one per award of the program, thousands of them
NOTICE_FIELDS = ("title", "award_ids", "program", "fiscal_year", "starts_on", "working_days")


def _page_number(name: str = "page") -> int:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1


def _pages(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))


def _account() -> Any:
    return current_person().account


def _number(text: str) -> int | str:
    """An integer as the API's JSON would carry it; anything else as typed, for the schema to refuse."""
    return int(text) if text.isdigit() and len(text) < 10 else text


def _flash(message: str) -> None:
    session["settlement_notice"] = message


def _flashed() -> str | None:
    return session.pop("settlement_notice", None)


# -- notices ------------------------------------------------------------------------------------


def _notice_messages() -> dict[str, str]:
    return {
        "title": _("请填写公示标题（至多 200 字）。"),
        "award_ids": _("请填写要公示的奖励编号（以逗号分隔，至多 %(n)s 个），或选择补贴项目和年度，二者选一。", n=MAX_BATCH),
        "program": _("请选择需要公示的补贴项目。"),
        "fiscal_year": _("按项目公示时须填写年度，如 2026。"),
        "starts_on": _("请填写公示开始日期，格式如 2026-12-01。"),
        "working_days": _("公示天数须为 1 到 %(n)s 之间的整数（工作日）。", n=MAX_WORKING_DAYS),
    }


def _notice_form_data(form: Any) -> dict[str, Any]:
    """The form as the API's JSON body: blank fields left out, numbers as numbers."""
    data: dict[str, Any] = {name: form.get(name, "").strip() for name in NOTICE_FIELDS}
    ids = [part.strip() for part in data["award_ids"].replace("，", ",").split(",") if part.strip()]
    data["award_ids"] = [_number(part) for part in ids] if ids else None
    for name in ("fiscal_year", "working_days"):
        data[name] = _number(data[name])
    return {name: value for name, value in data.items() if value not in ("", None)}


def _schema_errors(error: ValidationError, messages: dict[str, str]) -> dict[str, str]:
    return {name: messages.get(name, _("这一项的值无效。")) for name in error.normalized_messages()}


def _notice_refusal(error: InvalidInput) -> dict[str, str]:
    """The service's refusal of a batch, per field, in words."""
    fields = error.errors if isinstance(error.errors, dict) else {}
    # notices.period words this refusal so; the calendar's known years make the Chinese of it.
    if error.message.startswith("The notice's end can't be counted"):
        first, last = workdays.known_years()
        words = _("平台的工作日历只收录了 %(first)s–%(last)s 年的节假日安排，无法推算这个公示期的结束日：请选择在 %(last)s 年 12 月 31 日前结束的公示期。",
                  first=first, last=last)
        return {name: words for name in fields} or {"starts_on": words}
    out: dict[str, str] = {}
    for name, detail in fields.items():
        if name == "starts_on":
            out[name] = _("公示不能从过去的日期开始（以北京时间的今天为准）。")
        elif name == "award_ids" and isinstance(detail, dict):
            out[name] = _("以下奖励无法公示（不存在、已公示过、所属项目无需公示或已不在承诺状态），未冻结任何奖励：%(ids)s。",
                          ids="、".join(sorted(detail, key=lambda i: int(i) if i.isdigit() else 0)))
        elif name == "award_ids":
            out[name] = _("一次公示至多 %(n)s 个奖励。", n=MAX_BATCH)
        elif name == "program" and error.message == "No such subsidy program.":
            out[name] = _("没有这个补贴项目。")
        elif name == "program" and error.message == "Nothing to put on notice.":
            out[name] = _("该项目在这一年度没有尚未公示的已承诺奖励。")
        elif name == "program":
            out[name] = _("该项目的奖励无需公示。")
        else:
            out[name] = _("这一项的值无效。")
    return out or {"title": error.message}


def _notices_page(form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                  status: int = 200) -> tuple[str, int]:
    page = _page_number()
    found = settlement_pages.notice_list(get_session(), _account(), (page - 1) * PAGE_SIZE, PAGE_SIZE, now())
    return render_template("staff/notices.html", found=found, page=page, pages=_pages(found.total),
                           form=form or {"working_days": "5"}, errors=errors or {}, flashed=_flashed()), status


@bp.route("/staff/notices", methods=["GET"], endpoint="notices")
@staff_only
def notice_list() -> tuple[str, int]:
    """Notices, newest first, and the form that freezes a new batch."""
    return _notices_page()


@bp.route("/staff/notices", methods=["POST"])
@staff_only
def create_notice() -> Any:
    """Freeze a batch through the API's schema and `notices.create_notice`."""
    typed = request.form.to_dict()
    try:
        data = NoticeInSchema().load(_notice_form_data(request.form))
    except ValidationError as refused:
        return _notices_page(typed, _schema_errors(refused, _notice_messages()), 422)
    try:
        notice = notices.create_notice(get_session(), _account(), data, now())
    except InvalidInput as refused:
        return _notices_page(typed, _notice_refusal(refused), 422)
    _flash(_("已冻结 %(n)s 个奖励，公示自 %(start)s 起至 %(end)s 止。", n=len(notice.items),
             start=notice.starts_on.isoformat(), end=notice.ends_on.isoformat()))
    return redirect(url_for("staff_settlement.notice", notice_id=notice.id), code=303)


def _notice_page(notice_id: int, *, errors: dict[Any, str] | None = None, typed: dict[str, str] | None = None,
                 status: int = 200) -> tuple[str, int]:
    try:
        found = settlement_pages.notice_page(get_session(), _account(), notice_id, now())
    except NotFound:
        return error_page(404)
    return render_template("staff/notice.html", found=found, errors=errors or {}, typed=typed or {},
                           flashed=_flashed(), max_answer=MAX_ANSWER), status


@bp.route("/staff/notices/<int:notice_id>", methods=["GET"], endpoint="notice")
@staff_only
def notice_view(notice_id: int) -> tuple[str, int]:
    """One notice: its items, its objections with a form to answer each, finalise when due."""
    return _notice_page(notice_id)


@bp.route("/staff/notices/<int:notice_id>/objections/<int:objection_id>", methods=["POST"])
@staff_only
def answer_objection(notice_id: int, objection_id: int) -> Any:
    """Uphold (the award leaves the batch) or dismiss an objection, with the answer."""
    typed = {"decision": request.form.get("decision", ""), "answer": request.form.get("answer", "")}
    try:
        data = AnswerInSchema().load({name: value.strip() for name, value in typed.items() if value.strip()})
    except ValidationError as refused:
        messages = {"decision": _("请选择维持异议或驳回异议。"), "answer": _("请填写答复（至多 %(n)s 字）。", n=MAX_ANSWER)}
        errors = {(objection_id, name): text for name, text in _schema_errors(refused, messages).items()}
        return _notice_page(notice_id, errors=errors, typed=typed | {"objection": str(objection_id)}, status=422)
    try:
        answered = notices.answer_objection(get_session(), _account(), objection_id, data, now())
    except NotFound:
        return error_page(404)
    except InvalidInput:
        errors = {(objection_id, "decision"): _("这条异议针对整批公示、没有指向具体奖励，只能驳回。")}
        return _notice_page(notice_id, errors=errors, typed=typed | {"objection": str(objection_id)}, status=422)
    except Conflict as refused:
        return _notice_page(notice_id, errors={"page": _("未能答复异议：%(why)s", why=refused.message)}, status=409)
    _flash(_("异议 %(id)s 已维持，相应奖励已移出名单，未使用的承诺金额已退回预算。", id=answered.id)
           if answered.status.value == "upheld" else _("异议 %(id)s 已驳回并答复。", id=answered.id))
    return redirect(url_for("staff_settlement.notice", notice_id=answered.notice_id), code=303)


@bp.route("/staff/notices/<int:notice_id>/finalise", methods=["POST"])
@staff_only
def finalise(notice_id: int) -> Any:
    """The notice and the awards still in it become final (refused before its end or with open objections)."""
    try:
        notices.finalise(get_session(), _account(), notice_id, now())
    except NotFound:
        return error_page(404)
    except Conflict as refused:
        return _notice_page(notice_id, errors={"page": _("未能确定公示结果：%(why)s", why=refused.message)}, status=409)
    _flash(_("公示已结束，名单已确定：名单中的奖励可以结算拨付。"))
    return redirect(url_for("staff_settlement.notice", notice_id=notice_id), code=303)


# -- statements ---------------------------------------------------------------------------------

_HELD = (  # the parts of a line's `held` as settlement._line writes them, and their words
    (re.compile(r"^evidence incomplete \((.*) required\)$"), "evidence"),
    (re.compile(r"^notice not final \((\w+)\)$"), "notice"),
    (re.compile(r"^clawed back$"), "clawed_back"),
    (re.compile(r"^(-?[\d.]+) to recover after a clawback$"), "recover"),
    (re.compile(r"^nothing redeemed to pay$"), "nothing"),
)


def held_words(held: str | None) -> str:
    """Why a line is not payable, in words; a part the service words differently is shown as it is."""
    if not held:
        return ""
    evidence = {"contract": _("合同"), "invoice": _("发票"), "payment": _("付款凭证"), "usage_statement": _("用量清单")}
    notice = {"not_noticed": _("未公示"), "in_notice": _("公示中"), "removed": _("已移出名单")}
    out = []
    for part in held.split("; "):
        for pattern, kind in _HELD:
            found = pattern.match(part)
            if found is None:
                continue
            if kind == "evidence":
                names = "、".join(evidence.get(n.strip(), n.strip()) for n in found.group(1).split(","))
                out.append(_("证明材料不全（须提供%(names)s）", names=names))
            elif kind == "notice":
                out.append(_("公示尚未确定（%(state)s）", state=notice.get(found.group(1), found.group(1))))
            elif kind == "clawed_back":
                out.append(_("已追回"))
            elif kind == "recover":
                out.append(_("追回后待收回 %(amount)s", amount=money(Decimal(found.group(1)))))
            else:
                out.append(_("截至期末没有可支付的使用金额"))
            break
        else:
            out.append(part)
    return "；".join(out)



def _statements_page(form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                     status: int = 200) -> tuple[str, int]:
    page = _page_number()
    found = settlement_pages.statement_list(get_session(), _account(), (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return render_template("staff/statements.html", found=found, page=page, pages=_pages(found.total),
                           form=form or {}, errors=errors or {}, flashed=_flashed()), status


@bp.route("/staff/statements", methods=["GET"], endpoint="statements")
@staff_only
def statement_list() -> tuple[str, int]:
    """Statements, newest first, and the form that builds one."""
    return _statements_page()


@bp.route("/staff/statements", methods=["POST"])
@staff_only
def build_statement() -> Any:
    """Build one program's statement for a period through the API's schema and `settlement.build_statement`."""
    typed = {name: request.form.get(name, "").strip() for name in ("program", "period")}
    period_words = _("结算期间应为季度（如 2026-Q4，Q1 至 Q4）或月份（如 2026-11）。")
    try:
        data = StatementInSchema().load({name: value for name, value in typed.items() if value})
    except ValidationError as refused:
        return _statements_page(typed, _schema_errors(refused, {"program": _("请选择补贴项目。"), "period": period_words}), 422)
    threshold = Decimal(current_app.config["SETTLEMENT_FOUR_EYES_ABOVE"])
    try:
        built = settlement.build_statement(get_session(), _account(), data, now(), threshold)
    except InvalidInput as refused:
        fields = refused.errors if isinstance(refused.errors, dict) else {}
        errors = {"program": _("没有这个补贴项目。")} if "program" in fields else {}
        if "period" in fields:
            errors["period"] = (_("该结算期间尚未开始，期间开始后才能编制结算单。")
                                if refused.message == "The period has not begun." else period_words)
        return _statements_page(typed, errors or {"period": refused.message}, 422)
    except Conflict as refused:
        return _statements_page(typed, {"page": _("未能编制结算单：%(why)s", why=refused.message)}, 409)
    _flash(_("结算单已编制，应付合计 %(total)s，须 %(n)s 人审批。", total=money(built.total_payable), n=built.approvals_needed))
    return redirect(url_for("staff_settlement.statement", statement_id=built.id), code=303)


def _statement_page(statement_id: int, *, errors: dict[str, str] | None = None, typed: str = "",
                    status: int = 200) -> tuple[str, int]:
    page, payees_page = _page_number(), _page_number("payees_page")
    try:
        found = settlement_pages.statement_page(get_session(), _account(), statement_id, (page - 1) * LINES_PER_PAGE,
                                                LINES_PER_PAGE, (payees_page - 1) * PAGE_SIZE, PAGE_SIZE)
    except NotFound:
        return error_page(404)
    last_day = local(found.statement.ends_at).date() - dt.timedelta(days=1)  # ends_at is exclusive
    return render_template("staff/statement.html", found=found, view=found.statement, errors=errors or {},
                           typed=typed, flashed=_flashed(), me=_account().id, last_day=last_day, held_words=held_words,
                           page=page, pages=_pages(found.line_count, LINES_PER_PAGE), payees_page=payees_page,
                           payee_pages=_pages(found.payee_count)), status


@bp.route("/staff/statements/<int:statement_id>", methods=["GET"], endpoint="statement")
@staff_only
def statement_view(statement_id: int) -> tuple[str, int]:
    """One statement: lines per award, totals per payee, approvals and the approval form."""
    return _statement_page(statement_id)


@bp.route("/staff/statements/<int:statement_id>/approve", methods=["POST"])
@staff_only
def approve(statement_id: int) -> Any:
    """One approval; the final one writes the write-off rows with the disbursement reference."""
    typed = request.form.get("disbursement_reference", "")
    try:
        data = ApprovalInSchema().load({"disbursement_reference": typed.strip()} if typed.strip() else {})
    except ValidationError:
        return _statement_page(statement_id, status=422, typed=typed, errors={
            "disbursement_reference": _("请填写拨付凭证号（财政或银行的拨付编号，至多 100 字），终审时写入每条核销记录。")})
    try:
        approved = settlement.approve_statement(get_session(), _account(), statement_id, data, now())
    except NotFound:
        return error_page(404)
    except Forbidden as refused:
        return _statement_page(statement_id, typed=typed, status=403, errors={
            "page": _("不能审批自己编制的结算单，须由另一位工作人员审批。（%(why)s）", why=refused.message)})
    except DomainError as refused:  # Conflict: approved already, by you already, or an award changed since
        return _statement_page(statement_id, typed=typed, status=refused.status_code, errors={
            "page": _("未能审批：%(why)s", why=refused.message)})
    if approved.status.value == "draft":
        _flash(_("已记录第一位审批人。金额超过四眼原则限额，须由另一位工作人员终审。"))
    else:
        _flash(_("结算单已终审，已按拨付凭证号 %(ref)s 核销 %(total)s。", ref=approved.disbursement_reference,
                 total=money(approved.total_payable)))
    return redirect(url_for("staff_settlement.statement", statement_id=statement_id), code=303)


@bp.route("/staff/statements/<int:statement_id>.xlsx", methods=["GET"])
@staff_only
def statement_xlsx(statement_id: int) -> Any:
    """The statement as the spreadsheet `broker ledger statement --xlsx` writes."""
    try:
        found = settlement_pages.statement_sheet(get_session(), _account(), statement_id)
    except NotFound:
        return error_page(404)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statement.xlsx"
        settlement.write_xlsx(found.view, found.documents, path)
        content = path.read_bytes()
    return send_file(BytesIO(content), as_attachment=True,
                     download_name=f"statement-{found.view.program_code}-{found.view.period}-{statement_id}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
