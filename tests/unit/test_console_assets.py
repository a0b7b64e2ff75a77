"""The console works offline: no page loads anything from another host, and the vendored files
are the ones their README names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "broker" / "web" / "templates"
VENDOR = ROOT / "broker" / "web" / "static" / "vendor"
# An absolute URL where a page would fetch something: src=, href= on <link>, srcset=, url() in CSS,
# @import, and a script's import().
REMOTE_ASSET = re.compile(
    r"""(?:\bsrc\s*=|\bsrcset\s*=|<link\b[^>]*\bhref\s*=|\burl\(|@import|\bimport\()\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def test_no_template_or_stylesheet_loads_anything_from_another_host():
    files = [*TEMPLATES.rglob("*.html"), *(ROOT / "broker" / "web" / "static").glob("*.css")]
    assert files
    offenders = {str(path.relative_to(ROOT)): match.group(0) for path in files
                 for match in [REMOTE_ASSET.search(path.read_text(encoding="utf-8"))] if match}
    assert offenders == {}


def test_the_scan_would_catch_a_cdn():
    assert REMOTE_ASSET.search('<script src="https://cdn.jsdelivr.net/npm/htmx.org"></script>')
    assert REMOTE_ASSET.search("<link rel=stylesheet href='//fonts.googleapis.com/css'>")
    assert not REMOTE_ASSET.search('<a href="https://www.gov.cn/">a link is not an asset</a>')


def test_each_vendored_file_is_what_its_readme_says_and_has_its_licence():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    for folder, name in (("htmx", "htmx.min.js"), ("echarts", "echarts.min.js")):
        digest = hashlib.sha256((VENDOR / folder / name).read_bytes()).hexdigest()
        assert digest in readme, f"{folder}/{name} is not the file vendor/README.md describes"
        assert (VENDOR / folder / "LICENSE").is_file()


def test_the_app_serves_the_vendored_files(client):
    for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/echarts/echarts.min.js", "/static/console.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.data
