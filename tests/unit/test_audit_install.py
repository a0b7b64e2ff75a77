"""Every session factory gets the audit hook exactly once, however many came and went before."""

from __future__ import annotations

import gc

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from broker.models.audit import _write_audit_entries, install_audit


def _hooks(factory) -> int:
    session = factory()
    try:
        return list(session.dispatch.after_flush).count(_write_audit_entries)
    finally:
        session.close()


@pytest.mark.slow
def test_each_new_factory_gets_the_hook_even_where_a_dead_one_lived():
    # A collected factory's Session class leaves SQLAlchemy's registry key (its id) behind; a
    # new class at the same address must not be taken for one already hooked.
    engine = sa.create_engine("sqlite://")
    missing = 0
    for _ in range(40):
        factory = sessionmaker(bind=engine)
        install_audit(factory)
        missing += _hooks(factory) != 1
        del factory
        gc.collect()
    assert missing == 0


def test_installing_twice_hooks_once():
    factory = sessionmaker(bind=sa.create_engine("sqlite://"))
    install_audit(factory)
    install_audit(factory)
    assert _hooks(factory) == 1
