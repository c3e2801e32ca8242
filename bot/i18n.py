"""Translations and locale-aware formatting.

Every compiled catalog is loaded once at start-up; a missing one stops the bot (Babel would
otherwise fall back silently to English). Messages are looked up through a `Translator` bound
to one user's language, never through a process-wide `gettext.install()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_interval, format_skeleton, format_timedelta
from babel.dates import get_timezone_name as babel_zone_name
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("en", "fr", "es")
DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"

# Shown in each language's own name so a lost user can find theirs.
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "fr": "Français", "es": "Español"}


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, where the language is known."""
    return message


def negotiate(language_code: str | None) -> str:
    """Map a Telegram `language_code` (`fr-CA`, `es-419`, ...) to a supported language."""
    if not language_code:
        return DEFAULT_LANGUAGE
    found = Locale.negotiate([language_code.replace("_", "-")], list(LANGUAGES), sep="-")
    return str(found) if found else DEFAULT_LANGUAGE


# CLDR data Babel 2.18 does not carry (checked against CLDR 48 through ICU 78):
# - the minus sign of each locale's `hourFormat` ("+HH:mm;−HH:mm" in fr, U+2212; "-" in en, es);
# - `minimumGroupingDigits` (2 in es: "1000" but "12.000"; 1 in en and fr).
_OFFSET_MINUS: dict[str, str] = {"fr": "\u2212"}
_MIN_GROUPING: dict[str, int] = {"es": 2}


def format_offset(offset: timedelta, lang: str) -> str:
    """A UTC offset in the locale's CLDR pattern ("UTC+05:30", "UTC−02:30" in fr, "GMT-02:30"
    in es).

    Babel's `get_timezone_gmt` splits negative offsets with `divmod`, which shows St. John's
    summer time (-02:30) as "-03:30"; here the sign is taken first. Seconds, which only
    historical offsets have, are kept so the text always equals the offset.
    """
    seconds = int(offset.total_seconds())
    sign = _OFFSET_MINUS.get(lang, "-") if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
    return Locale.parse(lang).zone_formats["gmt"] % text


def format_number(n: int, lang: str) -> str:
    """A whole number as the locale writes it: "1,000" (en), "1\u202f000" (fr), "1000" but
    "12.000" (es, whose four-digit numbers take no separator)."""
    grouped = len(str(abs(n))) >= 3 + _MIN_GROUPING.get(lang, 1)
    return format_decimal(n, locale=lang, group_separator=grouped)


def format_duration(delta: timedelta, lang: str) -> str:
    """How long until something, in one whole unit that is true wherever the reader is:
    "45 minutes", "1 hour", "24 hours" (not "1 day", which reads as "tomorrow"), "3 days"."""
    if delta < timedelta(minutes=59, seconds=30):
        unit = "minute"
    elif delta < timedelta(hours=47, minutes=30):
        unit = "hour"
    else:
        unit = "day"
    # An infinite threshold makes Babel go down to `granularity` and round there (at least 1).
    return format_timedelta(delta, granularity=unit, threshold=float("inf"), locale=lang)


class CatalogError(Exception):
    """A compiled catalog is missing."""


@dataclass(frozen=True, slots=True)
class Translator:
    """One language's messages and Babel formatting."""

    lang: str
    translations: Translations

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def n_(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def date(self, when: datetime, zone: tzinfo) -> str:
        """Full date in `zone`, e.g. "jeudi 15 juin 2023"."""
        return format_date(when.astimezone(zone), "full", locale=self.lang)

    def short_date(self, when: datetime, zone: tzinfo) -> str:
        return format_date(when.astimezone(zone), "long", locale=self.lang)

    def time(self, when: datetime, zone: tzinfo) -> str:
        """A time of day in CLDR's Hm skeleton, as ranges have it ("07:30" fr, "7:30" es)."""
        return format_skeleton("Hm", when.astimezone(zone), locale=self.lang)

    def time_range(self, start: datetime, end: datetime, zone: tzinfo) -> str:
        return format_interval(start, end, "Hm", tzinfo=zone, locale=self.lang)

    def utc_offset(self, when: datetime, zone: tzinfo) -> str:
        """The offset the zone really has at that instant, e.g. "UTC+02:00", "UTC-02:30"."""
        return format_offset(when.astimezone(zone).utcoffset() or timedelta(0), self.lang)

    def zone_name(self, when: datetime, zone: tzinfo) -> str:
        """The zone's name at that instant, e.g. "Central European Summer Time"."""
        return babel_zone_name(when.astimezone(zone), locale=self.lang)

    def number(self, n: int) -> str:
        return format_number(n, self.lang)

    def duration(self, delta: timedelta) -> str:
        return format_duration(delta, self.lang)

    def language_name(self, code: str) -> str:
        """A language's name in this language, e.g. "francés" for fr in Spanish."""
        return Locale.parse(code).get_language_name(self.lang) or code

    def label(self, label: str, value: str) -> str:
        """ "Label: value" with the punctuation of this language (French puts a space)."""
        return self._("{label}: {value}").format(label=label, value=value)

    def country(self, code: str) -> str:
        return Locale.parse(self.lang).territories.get(code, code)


class I18n:
    """All catalogs, loaded eagerly."""

    def __init__(self, locales_dir: Path = LOCALES_DIR) -> None:
        self._translators: dict[str, Translator] = {}
        for lang in LANGUAGES:
            translations = Translations.load(str(locales_dir), locales=[lang], domain=DOMAIN)
            if not isinstance(translations, Translations):
                raise CatalogError(
                    f"{locales_dir}/{lang}/LC_MESSAGES/{DOMAIN}.mo is missing: run "
                    f"`pybabel compile -d locales`"
                )
            self._translators[lang] = Translator(lang, translations)

    def everywhere(self, message: str) -> frozenset[str]:
        """`message` in every language, case-folded: the words a user may type in any of them
        (an admin writes "none", "aucune" or "ninguno", whatever their chat language)."""
        return frozenset(t._(message).casefold() for t in self._translators.values())

    def __call__(self, lang: str | None) -> Translator:
        return self._translators.get(lang or DEFAULT_LANGUAGE, self._translators[DEFAULT_LANGUAGE])
