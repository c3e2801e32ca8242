"""Typography checks for French and Spanish texts, for any test to call on its own messages.

French: a narrow no-break space (U+202F) before ; ? !, a no-break space (U+00A0) before : and
inside « », and after nº, so a phone never wraps the sign onto a line of its own; "numéro" is
abbreviated nº (U+00BA, the o raised), not n° with a degree sign.
Spanish: every question and exclamation has its opening ¿ ¡.

URLs, times ("15:30"), commands, HTML tags and entities are not prose: they are blanked out
before checking, so "https://", "15:30" or "&amp;" raise nothing.
"""

from __future__ import annotations

import re

NNBSP = "\u202f"
NBSP = "\u00a0"

_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_URL = re.compile(r"\b(?:https?|tg|mailto)://\S+|\bmailto:\S+|\bwww\.\S+|\S+@\S+\.\w+")
_TIME = re.compile(r"\d:\d|\bHH:MM\b")  # 15:30, 8:30, a format HH:MM (the colon only)
_PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


def _prose(text: str) -> str:
    """The text with markup, URLs, e-mail addresses and times blanked out (same length is not
    needed: only the characters around punctuation matter)."""
    text = _TAG.sub("", text)
    text = _ENTITY.sub("x", text)
    text = _URL.sub("x", text)
    return _TIME.sub("0h0", text)


def french_problems(text: str) -> list[str]:
    """Where `text` breaks French typography; [] when it is right. Each problem quotes the
    surroundings, with the wrong space shown as ␣ (plain) or [NBSP]/[NNBSP]."""
    prose = _prose(text)
    problems: list[str] = []

    def say(match: re.Match[str], what: str) -> None:
        start, end = max(match.start() - 12, 0), match.end() + 12
        shown = (
            prose[start:end].replace(" ", "␣").replace(NBSP, "[NBSP]").replace(NNBSP, "[NNBSP]")
        )
        problems.append(f"{what}: …{shown}…")

    for match in re.finditer(r"(.)([;?!])", prose):
        before = match.group(1)
        if before == NNBSP or before in "?!":  # "?!" or "!!": the space is before the first
            continue
        if before == "\n" or (before == "(" and match.group(2) == "?"):
            continue
        say(match, f"U+202F needed before {match.group(2)!r}")
    if re.match(r"[;?!]", prose):
        problems.append("a line starts with ; ? or !")
    for match in re.finditer(r"(.):", prose):
        if match.group(1) != NBSP:
            say(match, "U+00A0 needed before ':'")
    for match in re.finditer(r"«(.)", prose):
        if match.group(1) != NBSP:
            say(match, "U+00A0 needed after '«'")
    for match in re.finditer(r"(.)»", prose):
        if match.group(1) != NBSP:
            say(match, "U+00A0 needed before '»'")
    for match in re.finditer(r"\bn[°º](.)", prose):
        if match.group(1) != NBSP:
            say(match, "U+00A0 needed after 'nº'")
    for match in re.finditer(r"\bn°", prose):
        say(match, "'nº' (U+00BA) for numéro, not 'n°' (a degree sign)")
    return problems


def spanish_problems(text: str) -> list[str]:
    """Questions and exclamations of `text` without their opening ¿ ¡ ("" when right)."""
    prose = _PLACEHOLDER.sub("x", _prose(text))
    problems: list[str] = []
    for closing, opening in (("?", "¿"), ("!", "¡")):
        # The sentence ends at the last ". ", "?", "!" or line break before the closing mark
        # (a colon or parenthesis may sit inside a question); its opening mark must follow.
        for match in re.finditer(re.escape(closing), prose):
            head = prose[: match.start()]
            start = max(head.rfind(sign) for sign in ("¿", "¡", "?", "!", "\n", ". "))
            if start < 0 or head[start] != opening:
                problems.append(f"{opening!r} missing: …{head[max(start, 0) :][-40:]}{closing}")
    return problems


def assert_french(text: str, where: str = "") -> None:
    problems = french_problems(text)
    assert not problems, f"{where}\n{text!r}\n" + "\n".join(problems)


def assert_spanish(text: str, where: str = "") -> None:
    problems = spanish_problems(text)
    assert not problems, f"{where}\n{text!r}\n" + "\n".join(problems)
