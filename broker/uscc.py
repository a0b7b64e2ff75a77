"""The unified social credit code (统一社会信用代码) of GB 32100-2015."""

from __future__ import annotations

# The 31 characters the standard uses: digits and capitals without I, O, Z, S, V.
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(body: str) -> str:
    """The 18th character for the first 17."""
    total = sum(CHARSET.index(c) * w for c, w in zip(body, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code, or None if it is."""
    if len(code) != 18:
        return f"Must be 18 characters, got {len(code)}."
    bad = sorted({c for c in code if c not in CHARSET})
    if bad:
        return f"Contains characters not allowed by GB 32100-2015: {''.join(bad)}."
    if not code[2:8].isdigit():
        return "Characters 3-8 must be the administrative division code (digits)."
    if check_character(code[:17]) != code[17]:
        return "Check character is wrong (GB 32100-2015)."
    return None
