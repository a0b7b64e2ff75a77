"""What a carrier publishing a lot again may change in the offer it already is: the rule, once.

Whichever way it comes (a pull, a push, an upload, written by broker/services/feed_writer.py,
or `POST /api/v1/offers`, by broker/services/market.py):

- it replaces the published fields (PUBLISHED_FIELDS);
- it never changes the lot's identity (IDENTITY): allocations were made on it as it is;
- its quantity never goes below what is already promised (the API refuses such a shrink, a
  feed stops at the promises and records the stop for staff).

Pure: no Flask, no session.
"""

from __future__ import annotations

from decimal import Decimal

IDENTITY = ("kind", "divisible")
PUBLISHED_FIELDS = ("region", "attributes", "quantity", "window_start", "window_end", "list_price", "unit_price")


def shrinks_below_promised(quantity: Decimal, promised: Decimal) -> bool:
    """Whether publishing `quantity` would take back capacity already promised from the lot."""
    return quantity < promised


def same_identity_sql(offer: str, feed: str) -> str:
    """SQL: the rows `offer` and `feed` (table aliases) are the same lot."""
    return " AND ".join(f"{offer}.{name} = {feed}.{name}" for name in IDENTITY)


def kept_quantity_sql(requested: str, promised: str) -> str:
    """SQL: the quantity a lot keeps when `requested` is published for it, never below `promised`."""
    return f"CASE WHEN {requested} < {promised} THEN {promised} ELSE {requested} END"
