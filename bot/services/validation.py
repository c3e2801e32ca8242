"""Cleaning and checking what participants type."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

NAME_MAX = 100
ORGANISATION_MAX = 150
QUESTION_MAX = 1000

_SPACES = re.compile(r"\s+")
# A lone no-break space is kept: French puts one before : ; ? ! and inside « » (keyboards in
# French type them), and a reader of the question must see it as its author wrote it.
_NO_BREAK = frozenset("\u00a0\u202f")
# Removed: controls (Cc), private use (Co), lone surrogates (Cs) and format characters (Cf),
# which show as nothing or change what is around them: zero-width space U+200B, the direction
# overrides U+202A..U+202E and isolates, the tag characters U+E0000..U+E007F, soft hyphen...
_REMOVED = frozenset({"Cc", "Cf", "Co", "Cs"})
# Letters and symbols that display as a blank: Hangul fillers, the blank Braille pattern.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Zero-width non-joiner and joiner (Cf) are kept where they do a job: inside an emoji sequence
# (👩‍💻, 👨‍👩‍👧) and between the letters and marks of the scripts that write with them
# (Persian, Devanagari…). Tag sequences (the flags of England, Scotland, Wales) are not kept:
# they show as a black flag 🏴.
_JOINERS = frozenset("\u200c\u200d")


def _joinable(ch: str) -> bool:
    """A non-ASCII letter, mark (U+FE0F included) or emoji-like symbol (So, Sk)."""
    if not ch or ch.isascii() or ch in _BLANKS:
        return False
    category = unicodedata.category(ch)
    return category[0] in "LM" or category in ("So", "Sk")


def clean_text(text: str) -> str:
    """Strip control, format and invisible characters (keeping emoji and any script),
    collapse spaces; "" when nothing visible is left."""
    kept: list[str] = []
    for i, ch in enumerate(text):
        if ch in "\n\t\r":
            kept.append(" ")
        elif ch in _JOINERS:
            if i > 0 and _joinable(text[i - 1]) and _joinable(text[i + 1 : i + 2]):
                kept.append(ch)
        elif ch not in _BLANKS and unicodedata.category(ch) not in _REMOVED:
            kept.append(ch)
    joined = "".join(kept)
    return _SPACES.sub(lambda m: m[0] if m[0] in _NO_BREAK else " ", joined).strip()


def clean_multiline(text: str) -> str:
    """Like `clean_text` but keeps line breaks (for questions to the panel)."""
    lines = [clean_text(line) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def normalise_email(text: str) -> str | None:
    """The normalised address, or None when it is not a valid email address."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching typed choices."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", re.sub(r"[^\w\s]", " ", stripped.casefold())).strip()
