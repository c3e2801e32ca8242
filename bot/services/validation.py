"""Cleaning and checking what participants type."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

NAME_MAX = 100
ORGANISATION_MAX = 150
QUESTION_MAX = 1000

_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Strip control and format characters (keeping emoji and any script), collapse spaces."""
    kept = "".join(
        " " if ch in "\n\t\r" else ch
        for ch in text
        if ch in "\n\t\r" or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )
    return _SPACES.sub(" ", kept).strip()


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
