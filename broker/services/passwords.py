"""Password hashing (argon2id) and the password policy: a minimum length and no common password.

Refusals name the field `password` and carry a message key (`PasswordRefused.key`); the
service's message is English, and `PASSWORD_MESSAGES` gives each key in Chinese and English so
the console shows the one for its locale without a catalogue lookup of free text.
"""

from __future__ import annotations

import functools
import gzip
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from broker.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this bounds the work one sign-in can ask for
COMMON_PASSWORDS_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "common-passwords.txt.gz")

PASSWORD_MESSAGES: dict[str, dict[str, str]] = {
    "password_too_short": {
        "zh_CN": f"密码至少需要 {MIN_LENGTH} 个字符。",
        "en": f"A password needs at least {MIN_LENGTH} characters.",
    },
    "password_too_long": {
        "zh_CN": f"密码最多 {MAX_LENGTH} 个字符。",
        "en": f"A password has at most {MAX_LENGTH} characters.",
    },
    "password_too_common": {
        "zh_CN": "这个密码是最常见的密码之一，很容易被猜到，请换一个。",
        "en": "This password is one of the most common passwords and easy to guess: choose another.",
    },
}


class PasswordRefused(InvalidInput):
    """A password the policy refuses; `key` names why (a key of PASSWORD_MESSAGES)."""

    def __init__(self, key: str) -> None:
        english = PASSWORD_MESSAGES[key]["en"]
        super().__init__(english, {"password": [english]})
        self.key = key
        self.messages = PASSWORD_MESSAGES[key]


@functools.cache
def common_passwords() -> frozenset[str]:
    """The vendored list (broker/data/README.md), read on first use."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def check_password(password: str) -> None:
    """Refuse a password that is too short, absurdly long, or common (compared case-insensitively)."""
    if len(password) < MIN_LENGTH:
        raise PasswordRefused("password_too_short")
    if len(password) > MAX_LENGTH:
        raise PasswordRefused("password_too_long")
    if password.lower() in common_passwords() or password.strip().lower() in common_passwords():
        raise PasswordRefused("password_too_common")


# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, t=3, m=64 MiB, p=4);
# when a later version (or this line) changes them, `needs_rehash` says so at the next sign-in.
_hasher = PasswordHasher()


def hasher() -> PasswordHasher:
    return _hasher


def use_hasher(new: PasswordHasher) -> PasswordHasher:
    """Hash with `new` from now on (tests use cheaper parameters); returns the one it replaces."""
    global _hasher
    old, _hasher = _hasher, new
    return old


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash (a person who signs in only through OIDC), a dummy
    is checked instead so the answer takes as long as a real one."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def spend_a_verification(password: str) -> None:
    """Take as long as checking a password does, for an email no person has (no enumeration by time)."""
    verify_password(None, password)


@functools.cache
def _dummy_hash_for(parameters: tuple) -> str:
    return _hasher.hash("not a password anyone has: a dummy to spend the same time on")


def _dummy_hash() -> str:
    return _dummy_hash_for((_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism, _hasher.hash_len))
