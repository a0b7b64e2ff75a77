"""Who is signed in to the console: the person's id, when they signed in and when they were last seen.

The Flask session cookie (signed, HttpOnly, SameSite=Lax, Secure outside development and test)
holds those three values and nothing else; this module never touches the database, so the
sign-in code decides who a person is and calls `start`, and every view asks `current_person_id`.
A session idle longer than BROKER_SESSION_IDLE_MINUTES is ended by `expire_idle`, which runs
before every console request.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, session

from broker.clock import now

PERSON = "person_id"
SIGNED_IN_AT = "signed_in_at"
LAST_SEEN = "last_seen"


def start(person_id: int) -> None:
    """Sign `person_id` in: a fresh session (nothing from before sign-in survives), stamped now."""
    session.clear()
    moment = now().isoformat()
    session[PERSON] = int(person_id)
    session[SIGNED_IN_AT] = moment
    session[LAST_SEEN] = moment
    g.pop("session_expired", None)


def end() -> None:
    """Sign out: nothing of the session is kept."""
    session.clear()


def current_person_id() -> int | None:
    """The signed-in person's id, or None (never signed in, signed out, or idle too long)."""
    value = session.get(PERSON)
    return int(value) if value is not None else None


def signed_in_at() -> dt.datetime | None:
    value = session.get(SIGNED_IN_AT)
    return dt.datetime.fromisoformat(value) if value else None


def expired() -> bool:
    """Whether this request found a session that had gone idle too long (and ended it)."""
    return bool(g.get("session_expired"))


def idle_limit() -> dt.timedelta:
    return dt.timedelta(minutes=int(current_app.config["SESSION_IDLE_MINUTES"]))


def expire_idle() -> None:
    """Before a console request: end a session idle past the limit, else note this request as activity."""
    if PERSON not in session:
        return
    moment = now()
    try:
        last_seen = dt.datetime.fromisoformat(session[LAST_SEEN])
    except (KeyError, TypeError, ValueError):
        last_seen = None  # a session this module did not write: treat it as expired
    if last_seen is None or moment - last_seen > idle_limit():
        session.clear()
        g.session_expired = True
        return
    session[LAST_SEEN] = moment.isoformat()
