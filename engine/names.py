"""Names that came from outside (a form, a zip's folders, an ONNX file's metadata) as plain text: one line
of printable characters, no terminal escapes, no bidirectional overrides, at most so long."""

from __future__ import annotations

MAX_CLASS_NAME = 40  # a class's name: a label under a bar, a legend entry
JOINERS = "\u200c\u200d"  # zero-width (non-)joiners: format characters some scripts' words need; harmless


def plain_text(text: str, most: int) -> str:
    """``text`` with every control and format character (NUL, ESC, CR/LF, U+202E and the other
    bidirectional controls) made a space, runs of spaces one, the ends trimmed, and at most ``most``
    characters (a longer one cut with an ellipsis)."""
    kept = "".join(ch if ch.isprintable() or ch in JOINERS else " " for ch in text)
    words = " ".join(kept.split())
    return words if len(words) <= most else words[: most - 1].rstrip() + "…"


MAX_NAME = 60  # a model's, a data set's, a class's or a member's name


def clean_name(name: str) -> str:
    """A name as it is kept: plain text (:func:`plain_text`) of at most :data:`MAX_NAME` characters."""
    return plain_text(name, MAX_NAME)
