"""A list as a CSV download: UTF-8 with the byte-order mark (so Excel on Chinese Windows reads the
Chinese headers right), CRLF line ends, streamed a row at a time (an export is every row, not a page)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, stream_with_context

BOM = "\ufeff"


def csv_writer(out: Any) -> Any:
    """The broker's CSV dialect: Excel's, with CRLF line ends."""
    return csv.writer(out, lineterminator="\r\n")


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> Response:
    """`header` then each of `rows` as a CSV attachment named `filename`."""

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(header)
        yield BOM + out.getvalue()
        for row in rows:
            out.seek(0)
            out.truncate()
            writer.writerow(row)
            yield out.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
