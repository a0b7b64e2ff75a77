"""Workers for multi-process race tests: each is one process calling the real HTTP API."""

from __future__ import annotations

from typing import Any

from broker.db import get_db
from tests.world import committed_app


def post_in_lockstep(url: str, instance: str, calls: list[tuple[str, str]], barrier: Any) -> list[tuple[str, int, str]]:
    """POST each (path, token) in turn, meeting the other processes at `barrier` before each call.

    Returns (path, status, message) per call, so the test sees every answer, 500s included.
    """
    app = committed_app(url, instance)
    client = app.test_client()
    answers = []
    try:
        for path, token in calls:
            barrier.wait(timeout=60)
            response = client.post(path, json={}, headers={"Authorization": f"Bearer {token}"})
            answers.append((path, response.status_code, (response.get_json(silent=True) or {}).get("message", "")))
    finally:
        get_db(app).engine.dispose()
    return answers


def accept_invitation_in_lockstep(url: str, instance: str, token: str, name: str, barrier: Any) -> str:
    """Accept an invitation through the service, meeting the other process at `barrier` first.

    Returns "accepted" or the refusal's message.
    """
    from argon2 import PasswordHasher

    from broker.clock import utcnow
    from broker.errors import DomainError
    from broker.services import passwords, people

    passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app = committed_app(url, instance)
    session = get_db(app).sessionmaker()
    try:
        barrier.wait(timeout=60)
        people.accept_invitation(session, token, name, "a long and unusual passphrase", utcnow())
        return "accepted"
    except DomainError as error:
        return error.message
    finally:
        session.close()
        get_db(app).engine.dispose()


def deactivate_in_lockstep(url: str, instance: str, actor_id: int, person_id: int, barrier: Any) -> str:
    """Deactivate a person through the service as `actor_id`, meeting the other process at
    `barrier` first. Returns "deactivated" or the refusal's message."""
    from broker.clock import utcnow
    from broker.errors import DomainError
    from broker.models import Person
    from broker.services import people

    app = committed_app(url, instance)
    session = get_db(app).sessionmaker()
    try:
        actor = session.get(Person, actor_id)
        session.rollback()  # the actor read, the race starts with no transaction open
        barrier.wait(timeout=60)
        people.deactivate_person(session, actor, person_id, utcnow())
        return "deactivated"
    except DomainError as error:
        return error.message
    finally:
        session.close()
        get_db(app).engine.dispose()
