"""Domain errors. Services raise them; one error handler maps each to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """A use case refused: the message is safe to show to the caller."""

    status_code = 400

    def __init__(self, message: str, errors: dict | list | None = None, *, location: str = "json") -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.location = location  # where in the request `errors` point: json, query, headers, files


class BadRequest(DomainError):
    """Input the broker can't read at all: a body over the JSON limits, a header that is not text."""

    status_code = 400


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a rule that needs the database to check."""

    status_code = 422


class PayloadTooLarge(DomainError):
    """Input over a size limit the schema can't see, e.g. what an uploaded file unpacks to."""

    status_code = 413


class NotAuthenticated(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """The object is not in a state that allows this change."""

    status_code = 409


class Unavailable(DomainError):
    """The database kept failing transiently (deadlock, serialization failure, lock held too long)."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(DomainError):
    """Sign-in is locked out after repeated failures until `retry_at` (even the right password waits)."""

    status_code = 429

    def __init__(self, message: str, retry_at: object) -> None:
        super().__init__(message)
        self.retry_at = retry_at
