"""The console's languages: Chinese (zh_CN) by default, English by the switch in the header.

The templates are written in Chinese, the source language (msgids are Chinese); the English
catalogue is `translations/en/LC_MESSAGES/messages.po`, kept in the repo. It is compiled when the
app starts, in memory (babel's own compiler, the same as `pybabel compile`): no `.mo` file is
committed, built at install or written anywhere, so a catalogue can never be stale against its
`.po` and the instance folder is not touched. A broken `.po` stops start-up.

To add strings: mark them (`{{ _("…") }}` in templates, `gettext("…")` in Python), then
`pybabel extract -F broker/web/babel.cfg -o /tmp/messages.pot broker/web && pybabel update
-i /tmp/messages.pot -d broker/web/translations --no-fuzzy-matching` and translate the new
entries; tests/unit/test_console_catalogues.py fails while a marked string has no English.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, request
from flask_babel import Babel, Domain, get_locale

TRANSLATIONS = Path(__file__).with_name("translations")
DEFAULT_LOCALE = "zh_CN"
# The languages the switch offers, in its order, each named in itself.
LANGUAGES = {"zh_CN": "中文", "en": "English"}
LANGUAGE_COOKIE = "broker_lang"
DOMAIN = "messages"


def compile_catalogue(po_path: Path, locale: str) -> Translations:
    """A `.po` file compiled to gettext translations in memory (what `pybabel compile` writes to a `.mo`)."""
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    errors = [(message.id, problems) for message, problems in catalog.check() if problems]
    if errors:
        raise ValueError(f"{po_path}: {errors[0][0]!r}: {errors[0][1][0]}")
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def compile_all(directory: Path = TRANSLATIONS) -> dict[str, Translations]:
    """Every language's catalogue in `directory` (LOCALE/LC_MESSAGES/messages.po), compiled."""
    return {
        po.parent.parent.name: compile_catalogue(po, po.parent.parent.name)
        for po in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    }


class CompiledDomain(Domain):
    """Flask-Babel's domain, answering from catalogues compiled at start-up instead of `.mo` files."""

    def __init__(self, catalogues: dict[str, Translations]) -> None:
        super().__init__(domain=DOMAIN)
        self.catalogues = catalogues

    def get_translations(self) -> Translations | NullTranslations:
        locale = get_locale()
        if locale is None:
            return NullTranslations()
        return self.catalogues.get(str(locale)) or NullTranslations()  # zh_CN: the msgids themselves


class ConsoleBabel(Babel):
    def __init__(self, catalogues: dict[str, Translations]) -> None:
        self._compiled = CompiledDomain(catalogues)
        super().__init__()

    @property
    def domain_instance(self) -> Domain:  # type: ignore[override]
        return self._compiled


def select_locale() -> str:
    """The language cookie the switch set, if it names one we have; Chinese otherwise."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LOCALE


def current_language() -> str:
    """This request's language as the switch names it (babel spells zh_CN zh_Hans_CN)."""
    locale = get_locale()
    if locale is None:
        return DEFAULT_LOCALE
    return next((code for code in LANGUAGES if Locale.parse(code).language == locale.language), DEFAULT_LOCALE)


def html_lang() -> str:
    """The `lang` attribute for <html>: BCP 47 (zh-CN), not the gettext spelling."""
    return current_language().replace("_", "-")


def init_babel(app: Flask) -> ConsoleBabel:
    babel = ConsoleBabel(compile_all())
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    babel.init_app(app, locale_selector=select_locale)
    return babel
