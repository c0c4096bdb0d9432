"""Names people type (a class, a data set, a member of a class): plain text, checked the same everywhere."""

from __future__ import annotations

from engine.names import clean_name


def plain_name(value: str | None) -> str | None:
    """Control characters out and at most 60 characters, as ``clean_name`` makes it; something must remain."""
    if value is None:
        return None
    text = clean_name(value)
    if not text:
        raise ValueError("a name needs at least one letter or digit")
    return text
