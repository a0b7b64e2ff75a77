"""The shape of the sync code: use cases, one feed writer, the adapter pool by its registry,
one rule for what a publication may change, and no clock of its own."""

import inspect
import re
from pathlib import Path

from adapters import registry
from broker import publishing
from broker.services import feed_writer, market, sync

BROKER = Path(publishing.__file__).parent


def test_the_feed_writer_has_one_public_entry_point():
    public = {
        name for name, value in vars(feed_writer).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == feed_writer.__name__
    }
    assert public == {"write_feed"}


def test_the_adapter_pool_lives_with_the_registry():
    assert registry.CarrierAdapters.__module__ == "adapters.registry"
    assert sync.CarrierAdapters is registry.CarrierAdapters  # only imported there, for its type
    assert "import broker" not in inspect.getsource(registry) and "from broker" not in inspect.getsource(registry)


def test_the_sync_code_reads_no_clock_of_its_own():
    """Every time a sync records is the `now` its use case was given (the app clock's)."""
    for module in (sync, feed_writer):
        source = inspect.getsource(module)
        assert not re.search(r"utcnow|\.now\(|\.today\(|time\.time\(|datetime\.utcnow", source), module.__name__


def test_what_a_publication_may_change_is_written_once():
    assert publishing.same_identity_sql("o", "f") == "o.kind = f.kind AND o.divisible = f.divisible"
    assert publishing.kept_quantity_sql("f.quantity", "o.promised") == (
        "CASE WHEN f.quantity < o.promised THEN o.promised ELSE f.quantity END"
    )
    assert set(feed_writer._COMPARED) | {"quantity"} == set(publishing.PUBLISHED_FIELDS)
    assert publishing.shrinks_below_promised(1, 2) and not publishing.shrinks_below_promised(2, 2)
    # Nowhere else: no second list of the published fields, identity test or promise guard.
    written = {
        "a list of the published fields": r'\(\s*"region",\s*"attributes"',
        "an identity comparison": r"\.divisible = \w+\.divisible|\.kind = \w+\.kind",
        "a guard on the promises": r"<\s*[\w.]*promised THEN",
    }
    for path in sorted(BROKER.rglob("*.py")):
        if path.name == "publishing.py" or "migrations" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        for what, pattern in written.items():
            assert not re.search(pattern, source), f"{path.relative_to(BROKER.parent)} has {what} of its own"
    assert "PUBLISHED_FIELDS" in inspect.getsource(market) and "IDENTITY" in inspect.getsource(market)
