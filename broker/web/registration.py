"""A company registers itself (注册企业, /register, no sign-in): its record, checked by the API's
registration schema (`StartupRegistrationSchema`: the unified social credit code as GB 32100-2015
says), and the person registering it, who becomes its legal representative and is signed in.

Reached from the sign-in page, or from the unified login (OIDC) when it vouched for the legal
representative of a company no one on the broker holds: the code and name it gave are filled
and read-only, and the person's name and email are the ones it vouched for (no password: they
sign in there). Thin view: the schema loads the form, `people.register_startup` does the rest
in one transaction; bad input comes back next to its field, 422, with nothing made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, DomainError
from broker.models import Sector
from broker.schemas.parties import StartupRegistrationSchema
from broker.services import people
from broker.web import session as console_session
from broker.web.auth import VOUCHED_REGISTRATION, shown
from broker.web.reports import SECTOR_NAMES
from broker.web.staff_startups import field_messages

bp = Blueprint("registration", __name__, template_folder="templates")

COMPANY_FIELDS = ("name", "uscc", "sector", "founded_on", "headcount", "contact_name", "contact_email", "contact_phone")
PERSON_FIELDS = ("person_name", "email")
VOUCHED_FOR = dt.timedelta(minutes=30)  # how long the unified login's word lasts for a registration


def _vouched() -> dict[str, str] | None:
    """What the unified login vouched for (company code and name, person's email and name), if recent."""
    claims = session.get(VOUCHED_REGISTRATION)
    try:
        fresh = claims is not None and now() - dt.datetime.fromisoformat(claims["at"]) < VOUCHED_FOR
    except (KeyError, TypeError, ValueError):
        fresh = False
    if not fresh:
        session.pop(VOUCHED_REGISTRATION, None)
        return None
    return claims


def _typed(vouched: dict[str, str] | None) -> dict[str, str]:
    """The form as typed, with what the unified login vouched for in place of anything typed over it."""
    typed = {name: request.form.get(name, "").strip() for name in COMPANY_FIELDS + PERSON_FIELDS}
    typed["uscc"] = typed["uscc"].upper()
    typed["registered_in_district"] = "yes" if request.form.get("registered_in_district") == "yes" else ""
    if vouched is not None:
        typed.update(uscc=vouched["uscc"], person_name=vouched["name"], email=vouched["email"])
        typed["name"] = vouched["company_name"] or typed["name"]
    return typed


def _registration(typed: dict[str, str]) -> dict[str, Any]:
    """The form as the schema's input: a blank phone is none, blank contacts are the registering person."""
    data: dict[str, Any] = {name: typed[name] for name in COMPANY_FIELDS}
    data["headcount"] = int(data["headcount"]) if data["headcount"].isdigit() else data["headcount"]
    data["contact_name"] = data["contact_name"] or typed["person_name"]
    data["contact_email"] = data["contact_email"] or typed["email"]
    if not data["contact_phone"]:
        del data["contact_phone"]
    data["registered_in_district"] = typed["registered_in_district"] == "yes"
    return data


def _person_words() -> dict[str, str]:
    return {"person_name": _("请填写您的姓名。"), "email": _("请填写有效的邮箱，如 name@example.cn。")}


def _schema_messages(refused: ValidationError, typed: dict[str, str]) -> dict[str, str]:
    """The schema's refusals by field, in words; a blank contact is the registering person's, so
    their own field is the one to fix."""
    words = field_messages() | {"uscc": _("统一社会信用代码须是 18 位，由数字和大写字母组成（不含 I、O、Z、S、V），"
                                          "校验位须正确（GB 32100-2015）。")}
    errors = {}
    for name in refused.normalized_messages():
        moved = {"contact_name": "person_name", "contact_email": "email"}.get(name)
        if moved is not None and not typed.get(name):
            errors[moved] = _person_words()[moved]
        else:
            errors[name] = words.get(name, _("这一项的值无效。"))
    return errors


def _refusal_messages(refused: DomainError) -> dict[str, str]:
    """A refused registration's message by its field, in words (the services' are English)."""
    field = next(iter(refused.errors), "form") if isinstance(refused.errors, dict) else "form"
    words = _person_words() | {
        "uscc": _("该统一社会信用代码已经登记在平台上。如果这是贵公司的代码而登记并非贵公司所为，请联系 %(contact)s："
                  "工作人员核实后撤销冒名登记，贵公司即可注册。", contact=current_app.config["DISTRICT_CONTACT"]),
        "password": shown(refused),
    }
    if field == "email" and isinstance(refused, Conflict):
        words["email"] = _("这个邮箱已属于平台上的一位人员：请直接登录，或换一个邮箱。")
    return {field: words.get(field, _("未能注册，请检查填写的内容后重试。"))}


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    """The registration form; a registration made signs its person in and lands on /company."""
    vouched = _vouched()
    errors: dict[str, str] = {}
    if request.method == "GET":
        typed = {"registered_in_district": "yes"}
        if vouched is not None:
            typed.update(uscc=vouched["uscc"], name=vouched["company_name"], person_name=vouched["name"],
                         email=vouched["email"])
    else:
        typed = _typed(vouched)
        try:
            data = StartupRegistrationSchema().load(_registration(typed))
        except ValidationError as refused:
            errors = _schema_messages(refused, typed)
        else:
            try:
                person = people.register_startup(
                    get_session(), data, email=typed["email"], name=typed["person_name"],
                    password=None if vouched else request.form.get("password", ""), now=now(),
                    district_contact=current_app.config["DISTRICT_CONTACT"], source="oidc" if vouched else "register")
            except DomainError as refused:
                errors = _refusal_messages(refused)
            else:
                console_session.start(person.id)  # a fresh session: the vouched claims go with the old one
                return redirect(url_for("company.company", done="registered"), code=303)
    return render_template("portal/register.html", form=typed, errors=errors, vouched=vouched is not None,
                           vouched_name=bool(vouched and vouched["company_name"]),
                           sectors=[(s.value, _(SECTOR_NAMES[s.value])) for s in Sector]), 422 if errors else 200
