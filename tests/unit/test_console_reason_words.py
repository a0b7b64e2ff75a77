"""Every reason the matching engine can give for a request left short has a sentence a
non-engineer understands, in Chinese with its English: a new reason code fails here until it has."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

from broker.matching import REASONS
from broker.web import reports

EN = Path(reports.__file__).resolve().parent / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def test_every_reason_code_has_words_and_no_words_name_a_code_that_is_gone():
    assert set(reports.REASON_WORDS) == set(REASONS)


def test_every_reasons_words_have_english_and_are_not_the_code():
    with EN.open("rb") as handle:
        english = {m.id: m.string for m in read_po(handle, locale="en") if m.id}
    for code, words in reports.REASON_WORDS.items():
        assert english.get(words), f"{code}: no English for {words!r}"
        assert english[words] != code and "_" not in english[words]


def test_every_reason_code_has_what_would_help_in_chinese_and_english():
    assert set(reports.REASON_HELP) == set(REASONS)
    with EN.open("rb") as handle:
        english = {m.id: m.string for m in read_po(handle, locale="en") if m.id}
    for code, words in reports.REASON_HELP.items():
        assert english.get(words), f"{code}: no English for {words!r}"
