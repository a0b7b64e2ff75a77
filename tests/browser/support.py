"""Helpers for the browser tests: the accessibility check and the committed screenshots."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parents[1] / "docs" / "screenshots"
AXE = HERE / "vendor" / "axe-core" / "axe.min.js"
# What the accessibility check fails on; "moderate" and "minor" findings are reported by axe but tolerated.
SERIOUS = ("serious", "critical")


def axe(page) -> list[dict]:
    """The serious and critical accessibility violations axe-core finds on the page as it is now."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    return page.evaluate(
        """async (serious) => {
            const results = await axe.run(document);
            return results.violations
                .filter(v => serious.includes(v.impact))
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.map(n => n.target.join(" "))}));
        }""",
        list(SERIOUS),
    )


def screenshot(page, name: str) -> Path:
    """Save the whole page as docs/screenshots/NAME.png (committed: the console as people see it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, email: str, password: str) -> None:
    """Sign in through the console's form, as a person does (the caller waits for where they land)."""
    page.goto("/sign-in")
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()
