"""The pure parts of email notifications: the opt-out token, the templates, the formats."""

from __future__ import annotations

from pathlib import Path

import datetime as dt

import pytest

from broker.services import notifications

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
FACTS = {"person": "王芳", "company": "上海云驰", "allocation_id": 7, "resource": "gpu", "quantity": "300", "unit": "GPU-hour",
         "carrier": "中国电信", "region": "sh-changning", "window_end": "2026-12-20", "reason": "材料不全",
         "carrier_ref": "CT-1", "error": "HTTP 503", "deadline": "2026-12-02 18:00", "amount": "¥1,000.00", "program": "",
         "file_name": "a.pdf", "title": "第1批", "ends_on": "2026-12-14", "link": "http://x/inbox",
         "unsubscribe": "http://x/unsubscribe/t", "settings": "http://x/settings/notifications", "kind": "",
         # the monthly report's (broker.services.monthly_report._facts)
         "month": "2026-11", "start": "2026-11-01", "end": "2026-11-30", "submitted": 6, "approved": 3, "active": 1,
         "rate": "50.00%", "committed": "¥0.00", "redeemed": "¥0.00", "firms": 2, "idle": 0}


def test_a_token_names_its_person_and_kind_until_it_expires():
    token = notifications.unsubscribe_token("k", 42, "allocation.approved", NOW)
    assert notifications.read_token("k", token, NOW + dt.timedelta(days=89)) == (42, "allocation.approved")
    with pytest.raises(notifications.BadToken):
        notifications.read_token("k", token, NOW + dt.timedelta(days=91))
    with pytest.raises(notifications.BadToken):
        notifications.read_token("other", token, NOW)
    with pytest.raises(notifications.BadToken):
        notifications.read_token("k", token + "x", NOW)
    with pytest.raises(notifications.BadToken):  # signed, but not a notifiable kind
        notifications.read_token("k", notifications.unsubscribe_token("k", 42, "allocation.withdrawn", NOW), NOW)


@pytest.mark.parametrize("language", notifications.LANGUAGES)
@pytest.mark.parametrize("kind", list(notifications.KINDS))
def test_every_kind_has_a_one_line_subject_and_a_body_with_the_opt_out_link(kind, language):
    subject, body = notifications.render(language, kind, FACTS)
    assert subject and "\n" not in subject and subject != body
    assert body.rstrip().endswith("http://x/settings/notifications") and "http://x/unsubscribe/t" in body
    assert ("您好" in body) == (language == "zh_CN")


def test_times_are_shown_in_shanghai_and_money_in_yuan():
    assert notifications.local_time("2026-12-02T10:00:00+00:00") == "2026-12-02 18:00"
    assert notifications.local_time(dt.datetime(2026, 12, 31, 16, 30)) == "2027-01-01 00:30"  # naive: UTC
    assert notifications.yuan("1234567.8") == "¥1,234,567.80" and notifications.yuan(None) == ""


def test_the_emails_call_each_kind_and_unit_what_the_console_calls_them():
    """The email templates name kinds and units in their own language; they must agree with the
    console's tables (zh_CN, the source strings) and its English catalogue."""
    from babel.messages.pofile import read_po

    from broker.services.notifications import _environment
    from broker.web.reports import KIND_NAMES, UNIT_NAMES

    import broker.web

    catalogue = Path(broker.web.__file__).parent / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    with catalogue.open("rb") as po:
        english = {message.id: message.string for message in read_po(po) if message.id}
    for language, say in (("zh_CN", lambda text: text), ("en", english.get)):
        module = _environment().get_template(f"{language}.txt").module
        assert module.KIND == {kind: say(name) for kind, name in KIND_NAMES.items()}, language
        assert module.UNIT == {kind: say(name) for kind, name in UNIT_NAMES.items()}, language
