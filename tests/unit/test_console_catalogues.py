"""The console's catalogues: every marked string has its English, and the app speaks what the `.po` says.

The `.po` files are compiled when the app starts (broker/web/i18n.py), in memory, so there is no
compiled file to fall behind; these tests hold that: change a `.po` and the app's English changes
with it, and a marked string without English (or a fuzzy or broken entry) fails here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask_babel import gettext

from broker.web import i18n

WEB = Path(i18n.__file__).resolve().parent
EN = WEB / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def _marked() -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    return {message for _, _, message, _, _ in extract_from_dir(str(WEB), method_map) if isinstance(message, str)}


def _catalogue(path: Path = EN):
    with path.open("rb") as handle:
        return read_po(handle, locale="en")


def test_every_marked_string_has_an_english_translation_and_none_is_fuzzy_or_stale():
    catalogue = _catalogue()
    entries = {message.id: message for message in catalogue if message.id}
    marked = _marked()
    assert marked, "no marked strings found: is the extraction looking in the right place?"
    assert sorted(marked - set(entries)) == [], "marked but not in en/messages.po: run pybabel extract/update"
    assert sorted(i for i, m in entries.items() if not m.string) == [], "in the catalogue without English"
    assert sorted(i for i, m in entries.items() if m.fuzzy) == [], "fuzzy entries are not used: review them"
    assert sorted(set(entries) - marked) == [], "no longer used by any template or module: remove them"
    assert [problems for _, problems in catalogue.check() if problems] == []


def test_the_running_app_speaks_exactly_what_the_po_file_says(app):
    """Every entry of the committed .po, looked up through the app's Flask-Babel in English."""
    entries = [message for message in _catalogue() if message.id]
    with app.test_request_context("/", headers={"Cookie": f"{i18n.LANGUAGE_COOKIE}=en"}):
        assert i18n.current_language() == "en"
        assert [gettext(message.id) for message in entries] == [message.string for message in entries]
    with app.test_request_context("/"):
        assert i18n.current_language() == "zh_CN"
        assert [gettext(message.id) for message in entries] == [message.id for message in entries]


def test_a_changed_po_file_is_what_gets_compiled(tmp_path):
    copy = tmp_path / "translations"
    shutil.copytree(WEB / "translations", copy)
    po = copy / "en" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    assert 'msgstr "Sign in"' in text
    po.write_text(text.replace('msgstr "Sign in"', 'msgstr "Log on"'), encoding="utf-8")
    compiled = i18n.compile_all(copy)
    assert compiled["en"].gettext("登录") == "Log on"
    assert i18n.compile_all()["en"].gettext("登录") == "Sign in"


def test_a_broken_po_file_stops_start_up(tmp_path):
    po = tmp_path / "en" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid "共 %(n)s 项"\nmsgstr "%(count)s items"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="messages.po"):
        i18n.compile_all(tmp_path)
