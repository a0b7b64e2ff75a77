"""The console's own pages that belong to no side: the landing page and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from broker.db import get_session
from broker.services import notifications
from broker.web.auth import current_person
from broker.web.i18n import LANGUAGE_COOKIE, LANGUAGES

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static", static_url_path="/static")

ONE_YEAR = 365 * 24 * 3600


@bp.route("/", methods=["GET"])
def landing() -> str:
    """What the platform is, in the district's words, and where to sign in."""
    return render_template("console/landing.html")


@bp.route("/language", methods=["POST"])
def switch_language() -> Response:
    """Set the language cookie (a form post with its CSRF token) and go back to the page it came from."""
    chosen = request.form.get("language", "")
    response = redirect(_same_site(request.form.get("next")), code=303)
    if chosen in LANGUAGES:
        person = current_person()
        if person is not None:  # a signed-in person's emails follow the language they read the console in
            notifications.set_language(get_session(), person.id, chosen)
        response.set_cookie(
            LANGUAGE_COOKIE, chosen, max_age=ONE_YEAR, httponly=True, samesite="Lax",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response


def _same_site(target: str | None) -> str:
    """A local path to go back to; anything pointing elsewhere (or nothing) is the landing page."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
