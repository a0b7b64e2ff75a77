"""0016 turns each appeal into a thread: a database at 0015 holding an answered appeal and an open
one comes up with the answered one's two messages (the startup's, then the district's) and the
open one's first, each appeal waiting since its latest word; and goes back down to 0015 with
every appeal as it was."""

import datetime as dt

import pytest
import sqlalchemy as sa

from broker.db import create_engine
from broker.migrations import downgrade, upgrade
from tests.integration.test_ledger_migration import AT, _fill_0009, _table

pytestmark = pytest.mark.slow

ANSWERED_AT = AT + dt.timedelta(days=2)


def _fill_appeals(connection) -> None:
    accounts = [{"id": 1, "role": "startup", "name": "上海云驰智行科技有限公司", "startup_id": 1, "carrier_id": None, "created_at": AT},
                {"id": 2, "role": "staff", "name": "李娜", "startup_id": None, "carrier_id": None, "created_at": AT},
                {"id": 3, "role": "startup", "name": "公司2", "startup_id": 2, "carrier_id": None, "created_at": AT}]
    connection.execute(sa.insert(_table("accounts", *accounts[0])), accounts)
    appeals = [
        {"id": 1, "allocation_id": 1, "startup_id": 1, "message": "GPU 分配已失效，请复核", "status": "answered",
         "answer": "下一轮撮合优先处理", "answered_by_id": 2, "answered_at": ANSWERED_AT, "created_at": AT},
        {"id": 2, "allocation_id": 2, "startup_id": 2, "message": "为何驳回？", "status": "open",
         "answer": None, "answered_by_id": None, "answered_at": None, "created_at": AT},
    ]
    connection.execute(sa.insert(_table("appeals", *appeals[0])), appeals)


def test_each_appeals_message_and_answer_become_its_thread(databases):
    engine = create_engine(databases.create())
    try:
        upgrade(engine, "0009")
        with engine.begin() as connection:
            _fill_0009(connection)
        upgrade(engine, "0015")
        with engine.begin() as connection:
            _fill_appeals(connection)
        upgrade(engine, "0016")
        with engine.connect() as connection:
            thread = connection.execute(sa.text(
                "SELECT appeal_id, author_id, author_side, body, created_at FROM appeal_messages ORDER BY appeal_id, id")).all()
            assert [tuple(row[:4]) for row in thread] == [
                (1, 1, "startup", "GPU 分配已失效，请复核"), (1, 2, "district", "下一轮撮合优先处理"),
                (2, 3, "startup", "为何驳回？"),
            ]
            assert [str(row[4])[:19] for row in thread] == [str(AT), str(ANSWERED_AT), str(AT)]
            appeals = connection.execute(sa.text(
                "SELECT id, status, waiting_since, assigned_to_id, closed_at FROM appeals ORDER BY id")).all()
            assert [(a[0], a[1], str(a[2])[:19], a[3], a[4]) for a in appeals] == [
                (1, "answered", str(ANSWERED_AT), None, None), (2, "open", str(AT), None, None)]
            connection.execute(sa.text("UPDATE appeals SET status = 'closed', closed_at = :at WHERE id = 1"), {"at": ANSWERED_AT})
            connection.commit()
        downgrade(engine, "0015")
        with engine.connect() as connection:
            assert "appeal_messages" not in sa.inspect(connection).get_table_names()
            back = connection.execute(sa.text("SELECT id, status, message, answer FROM appeals ORDER BY id")).all()
            assert [tuple(r) for r in back] == [(1, "answered", "GPU 分配已失效，请复核", "下一轮撮合优先处理"),
                                                (2, "open", "为何驳回？", None)]
        upgrade(engine)  # and up again to the head
    finally:
        engine.dispose()
