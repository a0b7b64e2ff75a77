"""Collecting a carrier feed into a FetchResult: quarantine bad records, drop duplicate ids."""

from __future__ import annotations

import logging
from decimal import InvalidOperation
from typing import Any, Callable

from broker.inputs import scrub

from adapters.base import FetchResult, OfferRecord, RecordError, RejectedRecord
from adapters.units import json_safe

log = logging.getLogger(__name__)

# What a parser may raise on a malformed record; anything else is a bug and propagates.
RECORD_ERRORS = (RecordError, KeyError, TypeError, ValueError, InvalidOperation, AttributeError)


def reason_for(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    if isinstance(error, RecordError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def rejected_record(
    raw: Any, location: str, external_id: Any, reason: str | Exception
) -> RejectedRecord:
    """A quarantine entry with a JSON-safe copy of the raw record, its text storable as sent
    (a NUL or a lone surrogate written as its \\uXXXX escape)."""
    return RejectedRecord(
        external_id=scrub(str(external_id)) if external_id not in (None, "") else None,
        raw=json_safe(raw),
        reason=scrub(reason if isinstance(reason, str) else reason_for(reason)),
        location=scrub(location),
    )


class FeedBuilder:
    """Adds records one by one; a malformed one is quarantined and never blocks the others.

    Duplicate external ids inside one feed: the first occurrence wins (readable or not), and
    every later one is quarantined, so capacity is never counted twice.
    """

    def __init__(self, carrier: str, *, complete: bool = True) -> None:
        self.result = FetchResult(carrier=carrier, complete=complete)
        self._first_seen: dict[str, str] = {}

    def add(
        self,
        raw: Any,
        location: str,
        external_id: str | None,
        build: Callable[[], OfferRecord],
    ) -> None:
        if isinstance(external_id, str):
            external_id = external_id.strip() or None
        else:
            external_id = None
        if external_id is not None and external_id in self._first_seen:
            self.reject(
                raw,
                location,
                external_id,
                f"duplicate external id {external_id!r}; kept the first, at "
                f"{self._first_seen[external_id]}",
            )
            return
        if external_id is not None:
            self._first_seen[external_id] = location
        try:
            offer = build()
        except RECORD_ERRORS as error:
            self.reject(raw, location, external_id, reason_for(error))
            return
        self.result.offers.append(offer)

    def reject(self, raw: Any, location: str, external_id: str | None, reason: str) -> None:
        self.result.rejected.append(rejected_record(raw, location, external_id, reason))

    def finish(self) -> FetchResult:
        result = self.result
        log.info(
            "%s: %d offers, %d quarantined", result.carrier, len(result.offers), len(result.rejected)
        )
        return result
