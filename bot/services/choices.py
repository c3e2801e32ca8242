"""The fixed choices of the registration form: keys are stored, labels are translated."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.i18n import N_
from bot.services.validation import fold

Choice = tuple[str, str]  # (key stored in the database, English label = msgid)

AFFILIATIONS: tuple[Choice, ...] = (
    ("pes", N_("Public Employment Service")),
    ("prea", N_("Private employment or recruitment agency")),
    ("employer", N_("Employers' organisation or employer")),
    ("union", N_("Workers' organisation or trade union")),
    ("government", N_("Government or ministry")),
    ("intl", N_("International organisation or NGO")),
    ("jobseeker", N_("Jobseeker or worker")),
    ("academia", N_("Academia or research")),
    ("other", N_("Other")),
)

SESSION_LANGUAGES: tuple[Choice, ...] = (
    ("en", N_("English")),
    ("fr", N_("French (interpretation)")),
    ("es", N_("Spanish (interpretation)")),
)


def label(choices: Sequence[Choice], key: str) -> str:
    """The English label (msgid) of a key; the key itself if unknown."""
    return dict(choices).get(key, key)


def match_choice(
    text: str, choices: Sequence[Choice], labels: Iterable[Sequence[str]]
) -> str | None:
    """The key a typed answer designates: its number, or its label in any language.

    `labels` gives, per language, the translated labels in the order of `choices`. A unique
    prefix of a label (at least 3 letters) also counts, as people on phones abbreviate.
    """
    answer = fold(text)
    if not answer:
        return None
    if answer.isdigit():
        index = int(answer) - 1
        return choices[index][0] if 0 <= index < len(choices) else None
    keys = [key for key, _ in choices]
    folded = [[fold(lbl) for lbl in language_labels] for language_labels in labels]
    for language_labels in folded:
        for key, lbl in zip(keys, language_labels, strict=True):
            if answer == lbl:
                return key
    if len(answer) >= 3:
        found = {
            key
            for language_labels in folded
            for key, lbl in zip(keys, language_labels, strict=True)
            if lbl.startswith(answer)
        }
        if len(found) == 1:
            return found.pop()
    return None
