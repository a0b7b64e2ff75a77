"""A report export is written a row at a time: writing 200,000 generated rows to CSV (20,000 to XLSX, whose
writer is slower) allocates a bounded, small amount of memory, well under what holding the rows in a list
takes, which the same test measures, so a writer that collects its rows first would fail it."""

from __future__ import annotations

import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from broker.web.report_exports import Column, Table, write_export

BOUND = 2 * 2**20  # bytes: the writers' own peak, whatever the number of rows


def synthetic_tables(rows: int) -> list[Table]:
    """One table of `rows` generated rows (a generator: none is kept), each column kind once."""
    columns = [Column("id"), Column("企业"), Column("count", "count"), Column("qty", "qty"), Column("hours", "hours"),
               Column("money", "money")]

    def generated() -> Iterator[list[Any]]:
        for n in range(rows):
            yield [str(n), f"企业{n % 997}", n % 1000, Decimal(n % 5000) / 8, n % 100 / 4, Decimal(n) / 100]

    return [Table("synthetic", "synthetic", columns, generated())]


def _peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("extension", "rows"), [("csv", 200_000), ("xlsx", 20_000)])
def test_an_export_of_generated_rows_is_written_in_bounded_memory(extension, rows):
    import openpyxl  # noqa: F401 - imported before measuring: its modules are not the export's memory

    with tempfile.TemporaryFile() as out:
        written = []
        peak = _peak(lambda: written.append(write_export(extension, out, [("报表", "synthetic")], synthetic_tables(rows),
                                                          "筛选条件")))
        assert written == [rows]
        assert out.tell() > rows * 20  # every row is in the file
    held = _peak(lambda: [list(table.rows) for table in synthetic_tables(rows)])
    assert peak < BOUND < held, (peak, held)


def test_the_rows_written_can_be_read_back():
    """The streamed XLSX is a workbook openpyxl reads: the filters sheet, the table's header and every row."""
    from openpyxl import load_workbook

    with tempfile.TemporaryFile() as out:
        write_export("xlsx", out, [("报表", "synthetic")], synthetic_tables(3), "筛选条件")
        out.seek(0)
        book = load_workbook(out, read_only=True)
        assert book.sheetnames == ["筛选条件", "synthetic"]
        values = [list(row) for row in book["synthetic"].iter_rows(values_only=True)]
    assert values[0] == ["id", "企业", "count", "qty", "hours", "money"]
    assert values[1:] == [["0", "企业0", 0, 0, 0, 0], ["1", "企业1", 1, 0.125, 0.25, 0.01], ["2", "企业2", 2, 0.25, 0.5, 0.02]]
