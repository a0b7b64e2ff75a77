"""What the broker accepts from outside: JSON within a nesting depth and a number length, and
text without NUL characters or unpaired surrogates.

Pure functions, shared by the API (every JSON body, every schema's strings, the headers it
reads) and the adapters (carriers' JSON, feeds and files), so each rule is written once.
Python's own json module recurses once per nesting level (a 2 KB body of brackets raises
RecursionError) and refuses integers of more than 4300 digits with a ValueError that is not a
JSON error; PostgreSQL stores no NUL in text and no lone surrogate encodes as UTF-8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_JSON_DEPTH = 32  # the deepest body the API takes (a batch of offers) nests 4 levels
MAX_NUMBER_DIGITS = 40  # digits of one JSON number, fraction included; no field needs 20

# One JSON token of interest: a string (skipped whole), a bracket or comma, or a number.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]|-?([0-9]+)(?:\.([0-9]+))?(?:[eE][+-]?[0-9]+)?', re.DOTALL)
_LONG_NUMBER = re.compile(r"[0-9.]{%d,}" % (MAX_NUMBER_DIGITS + 1))
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_ERROR_PATH_LEVELS = 8


class InputLimitError(ValueError):
    """A JSON document over a limit; `path` is where in it (keys and list indices)."""

    def __init__(self, message: str, problem: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problem = problem
        self.path = path

    def errors(self) -> Any:
        """`problem` at `path`, nested as marshmallow nests its errors (a list at the top level)."""
        errors: Any = [self.problem]
        for step in reversed(self.path):
            errors = {step: errors}
        return errors


def json_limit_error(text: str) -> InputLimitError | None:
    """Why `text` is over the depth or number limit, or None: read lexically, never recursively."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH and not _LONG_NUMBER.search(text):
        return None  # the usual body: too few brackets to be too deep, no long number
    # One frame per open container: [is_object, current key or index, expecting a key].
    frames: list[list[Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first == '"':
            top = frames[-1] if frames else None
            if top is not None and top[0] and top[2]:
                top[1], top[2] = _key(token), False
        elif first in "[{":
            if len(frames) >= MAX_JSON_DEPTH:
                return InputLimitError(
                    f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.",
                    f"Nested deeper than {MAX_JSON_DEPTH} levels.",
                    _path(frames),
                )
            frames.append([first == "{", None if first == "{" else 0, first == "{"])
        elif first in "]}":
            if frames:
                frames.pop()
        elif first == ",":
            if frames:
                top = frames[-1]
                if top[0]:
                    top[2] = True
                else:
                    top[1] += 1
        else:
            digits = len(match.group(1)) + len(match.group(2) or "")
            if digits > MAX_NUMBER_DIGITS:
                return InputLimitError(
                    f"The JSON body has a number of {digits} digits; at most {MAX_NUMBER_DIGITS} are accepted.",
                    f"A number of {digits} digits; at most {MAX_NUMBER_DIGITS} are accepted.",
                    _path(frames),
                )
    return None


def _key(token: str) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        key = token[1:-1]
    return scrub(key)


def _path(frames: list[list[Any]]) -> tuple[str | int, ...]:
    # The first levels name the field well enough, and keep the error itself shallow.
    return tuple(frame[1] for frame in frames if frame[1] is not None)[:_ERROR_PATH_LEVELS]


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """json.loads, refusing first (InputLimitError, a ValueError) what is too deep or too long."""
    text = data if isinstance(data, str) else data.decode(json.detect_encoding(data))
    error = json_limit_error(text)
    if error is not None:
        raise error
    return json.loads(text, **kwargs)


def text_problem(value: str) -> str | None:
    """Why `value` can't be stored as text, or None: a NUL character or an unpaired surrogate."""
    if value.isascii():
        return "Must not contain NUL characters." if "\x00" in value else None
    match = _UNSAFE.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Must not contain NUL characters."
    return "Must not contain unpaired surrogates (U+D800-U+DFFF): not valid Unicode text."


def text_problems(value: Any) -> Any:
    """`text_problem` of every string in a decoded JSON value, keys included, nested as the value
    is (marshmallow's error shape), or None when every string is fine."""
    if isinstance(value, str):
        problem = text_problem(value)
        return [problem] if problem else None
    if isinstance(value, Mapping):
        found: dict[Any, Any] = {}
        for key in value:
            if isinstance(key, str) and text_problem(key):
                found[scrub(key)] = [f"The field name: {text_problem(key)}"]
                continue
            problems = text_problems(value[key])
            if problems:
                found[key] = problems
        return found or None
    if isinstance(value, (list, tuple)):
        found_items = {i: p for i, item in enumerate(value) if (p := text_problems(item))}
        return found_items or None
    return None


def scrub(value: str) -> str:
    """`value` with each NUL and lone surrogate written as its \\uXXXX escape, for storing or showing
    text that came in broken (a quarantined record as sent, an error message)."""
    if value.isascii() and "\x00" not in value:
        return value
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
