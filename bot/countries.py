"""Country codes, localized country names and forgiving country matching.

Pure data and logic: no Telegram imports and no user-facing sentences. Names come from
Babel (CLDR); the list of countries is ISO 3166-1 alpha-2 as shipped by ``tzdata``
(``iso3166.tab``) plus Kosovo (``XK``).
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from babel import Locale
from babel.core import UnknownLocaleError, get_global

__all__ = [
    "SUPPORTED",
    "CountryMatch",
    "codes_by_name",
    "country_codes",
    "country_name",
    "exact_country_codes",
    "is_country",
    "match_country",
    "preload",
]

SUPPORTED = ("en", "fr", "es")
_DEFAULT_LANG = "en"

# Codes used in practice that are not (yet) in ISO 3166-1.
_EXTRA_CODES = ("XK",)

# Regional locales whose names differ from the base language (e.g. es_419 "Costa de Marfil",
# en_GB "St Lucia", fr_CA "Bélarus"); all are accepted as input, the base one is displayed.
_INPUT_LOCALES: dict[str, tuple[str, ...]] = {
    "en": ("en", "en_GB"),
    "fr": ("fr", "fr_CA"),
    "es": ("es", "es_419", "es_MX", "es_US"),
}

# Other languages whose own name of a country (where the language is official there) is
# accepted as exact input: "Deutschland", "Nederland", "Moçambique", "Suomi", "المغرب"...
# Limited to languages that add names (each locale costs ~8 ms to load, once, lazily).
_ENDONYM_LANGS = (
    "pt", "nl", "de", "it", "sv", "nb", "da", "fi", "is", "pl", "cs", "sk", "sl", "hr",
    "sr_Latn", "sq", "ro", "hu", "lt", "lv", "et", "tr", "ms", "fil", "ar", "ru",
)  # fmt: skip

# Hand-curated aliases (any of the three languages, common abbreviations, former names).
# A tuple value makes the alias deliberately ambiguous: it yields suggestions, in that order.
_ALIASES: dict[str, str | tuple[str, ...]] = {
    # Ambiguous short forms.
    "Congo": ("CD", "CG"),
    "Korea": ("KR", "KP"),
    "Corée": ("KR", "KP"),
    "Corea": ("KR", "KP"),
    "Virgin Islands": ("VI", "VG"),
    "Îles Vierges": ("VI", "VG"),
    "Islas Vírgenes": ("VI", "VG"),
    # United States.
    "US": "US",
    "USA": "US",
    "United States of America": "US",
    "EEUU": "US",
    "EUA": "US",
    "Estados Unidos de América": "US",
    "Estados Unidos de Norteamérica": "US",
    "États-Unis d’Amérique": "US",
    # United Kingdom.
    "UK": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "United Kingdom of Great Britain and Northern Ireland": "GB",
    "Grande-Bretagne": "GB",
    "Angleterre": "GB",
    "Écosse": "GB",
    "Pays de Galles": "GB",
    "Irlande du Nord": "GB",
    "Gran Bretaña": "GB",
    "Inglaterra": "GB",
    "Escocia": "GB",
    "Gales": "GB",
    "Irlanda del Norte": "GB",
    # Netherlands.
    "Holland": "NL",
    "Hollande": "NL",
    "Holanda": "NL",
    # Côte d'Ivoire.
    "Ivory Coast": "CI",
    "Costa de Marfil": "CI",
    # The two Congos.
    "DRC": "CD",
    "DR Congo": "CD",
    "RDC": "CD",
    "RD Congo": "CD",
    "Congo RDC": "CD",
    "Congo DRC": "CD",
    "Democratic Republic of the Congo": "CD",
    "Democratic Republic of Congo": "CD",
    "République démocratique du Congo": "CD",
    "Zaire": "CD",
    "Republic of the Congo": "CG",
    "Republic of Congo": "CG",
    "République du Congo": "CG",
    "República del Congo": "CG",
    # Koreas.
    "Republic of Korea": "KR",
    "République de Corée": "KR",
    "República de Corea": "KR",
    "DPRK": "KP",
    "Democratic People’s Republic of Korea": "KP",
    "République populaire démocratique de Corée": "KP",
    "República Popular Democrática de Corea": "KP",
    # Other official, former or everyday names.
    "Czech Republic": "CZ",
    "République tchèque": "CZ",
    "República Checa": "CZ",
    "Turkey": "TR",
    "Turquia": "TR",
    "Turkiye": "TR",
    "Swaziland": "SZ",
    "Swazilandia": "SZ",
    "Macedonia": "MK",
    "Macédoine": "MK",
    "Burma": "MM",
    "Birmanie": "MM",
    "Birmania": "MM",
    "East Timor": "TL",
    "Timor Oriental": "TL",
    "Vatican": "VA",
    "Vaticano": "VA",
    "Holy See": "VA",
    "Saint-Siège": "VA",
    "Santa Sede": "VA",
    "Palestine": "PS",
    "Palestina": "PS",
    "State of Palestine": "PS",
    "État de Palestine": "PS",
    "Estado de Palestina": "PS",
    "Russian Federation": "RU",
    "Fédération de Russie": "RU",
    "Federación de Rusia": "RU",
    "Syrian Arab Republic": "SY",
    "République arabe syrienne": "SY",
    "República Árabe Siria": "SY",
    "Lao PDR": "LA",
    "Lao People’s Democratic Republic": "LA",
    "United Republic of Tanzania": "TZ",
    "République-Unie de Tanzanie": "TZ",
    "República Unida de Tanzania": "TZ",
    "Republic of Moldova": "MD",
    "République de Moldavie": "MD",
    "República de Moldavia": "MD",
    "Belorussia": "BY",
    "Byelorussia": "BY",
    "Belarús": "BY",
    "Islamic Republic of Iran": "IR",
    "Hong Kong": "HK",
    "Hongkong": "HK",
    "Macao": "MO",
    "Macau": "MO",
    "UAE": "AE",
    "EAU": "AE",
    "Emirates": "AE",
    "Émirats": "AE",
    "Emiratos": "AE",
    "Emiratos Árabes": "AE",
    "Saudi": "SA",
    "KSA": "SA",
    "RSA": "ZA",
    "RCA": "CF",
    "Centrafrique": "CF",
    "Aotearoa": "NZ",
    "Eire": "IE",
    "Republic of Ireland": "IE",
    "Federated States of Micronesia": "FM",
    "PRC": "CN",
    "People’s Republic of China": "CN",
    "République populaire de Chine": "CN",
    "República Popular China": "CN",
    "Kirghizia": "KG",
    "Kyrgyz Republic": "KG",
    "Brunei Darussalam": "BN",
    "Falklands": "FK",
    "Malvinas": "FK",
    "Malouines": "FK",
    "Saint Kitts": "KN",
    "Saint Vincent": "VC",
    "Sao Tome": "ST",
}

_PREFIX_MIN = 4  # a unique prefix this long (normalized) is a confident match
_FUZZY_CUTOFF = 0.75
_MAX_SUGGESTIONS = 5
_MAX_INPUT = 80  # longer input is not a country name; also bounds difflib's work
_LANG_BONUS = 0.02  # fuzzy tie-breaker for names in the user's language

_ALPHA2_RE = re.compile(r"[A-Z]{2}")
_SPLIT_RE = re.compile(r"[\W_]+")
_FOLD_TABLE = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)
_STOPWORDS = frozenset({"and", "et", "y", "the"})
_ARTICLES = frozenset({"la", "le", "les", "l", "el", "los", "las"})
_ABBREVIATIONS = {"st": "saint", "ste": "sainte"}
_REGIONAL_INDICATOR_A = 0x1F1E6


# --------------------------------------------------------------------------- normalization


def _fold(text: str) -> str:
    """Casefold and strip accents: "Côte d’Ivoire" -> "cote d’ivoire"."""
    text = text.casefold().translate(_FOLD_TABLE)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _words(text: str, *, articles: bool = True) -> tuple[str, ...]:
    """Normalized words; punctuation, "and"/"et"/"y"/"the" and (optionally) a leading article
    are dropped and "St"/"Ste" are expanded, so that spelling variants share one key."""
    words = [_ABBREVIATIONS.get(w, w) for w in _SPLIT_RE.split(_fold(text)) if w]
    if len(words) > 1:
        words = [w for w in words if w not in _STOPWORDS] or words
    if articles and len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return tuple(words)


def _key(text: str, *, articles: bool = True) -> str:
    """Matching key: normalized words joined without spaces ("COTE DIVOIRE" -> "cotedivoire")."""
    return "".join(_words(text, articles=articles))


def _sort_key(text: str) -> str:
    """Accent- and case-insensitive sort key for display lists (Babel has no collation)."""
    return " ".join(_SPLIT_RE.split(_fold(text))).strip()


def _lang(lang: str) -> str:
    """Supported primary language of a locale ("fr-CA" -> "fr"); otherwise English."""
    primary = re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0] if lang else ""
    return primary if primary in SUPPORTED else _DEFAULT_LANG


class _Fuzzy:
    """``difflib`` closeness search over a fixed vocabulary of keys.

    Same scores as :func:`difflib.get_close_matches` (``SequenceMatcher.ratio``), but
    candidates are first pruned by length and by a character-multiset bitmask (an upper bound
    of the ratio, like ``quick_ratio``), so that only a handful are scored in full.
    """

    __slots__ = ("_by_length",)

    _SLOTS_PER_CHAR = 8

    def __init__(self, keys: Iterable[str]) -> None:
        self._by_length: dict[int, list[tuple[str, int]]] = {}
        for key in sorted(set(keys)):
            self._by_length.setdefault(len(key), []).append((key, self._mask(key)))

    @classmethod
    def _mask(cls, text: str) -> int:
        """One bit per (character, occurrence): popcount(a & b) bounds the common characters."""
        seen: dict[int, int] = {}
        mask = 0
        for ch in text:
            slot = ord(ch) - 97 if "a" <= ch <= "z" else 26  # all other characters share a slot
            count = seen.get(slot, 0)
            seen[slot] = count + 1
            mask |= 1 << (slot * cls._SLOTS_PER_CHAR + min(count, cls._SLOTS_PER_CHAR - 1))
        return mask

    def close(self, word: str, cutoff: float) -> list[tuple[float, str]]:
        """(ratio, key) for every key whose ratio to ``word`` is at least ``cutoff``."""
        size = len(word)
        if not size:
            return []
        mask = self._mask(word)
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(word)
        low = math.ceil(size * cutoff / (2 - cutoff) - 1e-9)
        high = math.floor(size * (2 - cutoff) / cutoff + 1e-9)
        found: list[tuple[float, str]] = []
        for length in range(max(low, 1), high + 1):
            bound = cutoff * (size + length)
            for key, key_mask in self._by_length.get(length, ()):
                if 2 * (mask & key_mask).bit_count() < bound:
                    continue
                matcher.set_seq1(key)
                ratio = matcher.ratio()
                if ratio >= cutoff:
                    found.append((ratio, key))
        return found


# ------------------------------------------------------------------------------- the data


def _read_tzdata(name: str) -> str:
    return importlib.resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")


@functools.cache
def country_codes() -> tuple[str, ...]:
    """ISO 3166-1 alpha-2 codes of countries and territories (plus XK), sorted by code."""
    codes = {
        line.split("\t", 1)[0]
        for line in _read_tzdata("iso3166.tab").splitlines()
        if line and not line.startswith("#")
    }
    territories = Locale.parse(_DEFAULT_LANG).territories
    codes.update(_EXTRA_CODES)
    return tuple(sorted(code for code in codes if code in territories))


@functools.cache
def _code_set() -> frozenset[str]:
    return frozenset(country_codes())


def is_country(code: str) -> bool:
    """True for a code returned by :func:`country_codes` (upper case, e.g. "SN")."""
    return code in _code_set()


@functools.cache
def _names(lang: str) -> dict[str, str]:
    territories = Locale.parse(lang).territories
    return {code: territories[code] for code in country_codes()}


def country_name(code: str, lang: str) -> str:
    """Babel's name of the country in "en", "fr" or "es" (other languages fall back to
    English). An unknown code is returned unchanged rather than raising."""
    return _names(_lang(lang)).get(code.upper(), code)


@functools.cache
def codes_by_name(lang: str) -> tuple[str, ...]:
    """All country codes sorted by their localized name, ignoring accents and case."""
    names = _names(_lang(lang))
    return tuple(sorted(names, key=lambda code: (_sort_key(names[code]), code)))


# ------------------------------------------------------------------------------- the index


@dataclass(slots=True)
class _Index:
    # normalized key -> codes, from names in en/fr/es (and regional variants) and aliases
    exact: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # lower-case alpha-3 -> alpha-2
    alpha3: dict[str, str] = field(default_factory=dict)
    # key -> {code: languages having that name ("*" for aliases)}, for prefix and fuzzy search
    entries: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # keys of deliberately ambiguous aliases, whose suggestion order is fixed
    fixed_order: set[str] = field(default_factory=set)
    fuzzy: _Fuzzy = field(default_factory=lambda: _Fuzzy(()))


def _add(table: dict[str, list[str]], key: str, code: str) -> None:
    codes = table.setdefault(key, [])
    if code not in codes:
        codes.append(code)


def _name_variants(name: str) -> Iterable[str]:
    """The name itself and, if it has a parenthetical part, the name without it
    ("Myanmar (Burma)" -> "Myanmar", "RAE de Hong Kong (China)" -> "RAE de Hong Kong")."""
    yield name
    stripped = re.sub(r"\s*\([^)]*\)", "", name).strip()
    if stripped and stripped != name:
        yield stripped


@functools.cache
def _index() -> _Index:
    index = _Index()
    codes = _code_set()
    exact: dict[str, list[str]] = {}

    def add_entry(key: str, code: str, lang: str) -> None:
        index.entries.setdefault(key, {}).setdefault(code, set()).add(lang)

    for lang, locales in _INPUT_LOCALES.items():
        for locale_id in locales:
            territories = Locale.parse(locale_id).territories
            for code in codes:
                for variant in _name_variants(territories.get(code, "")):
                    key = _key(variant)
                    if key:
                        _add(exact, key, code)
                        add_entry(key, code, lang)

    for alias, target in _ALIASES.items():
        key = _key(alias)
        targets = (target,) if isinstance(target, str) else target
        for code in targets:
            add_entry(key, code, "*")
        if isinstance(target, tuple):
            exact[key] = list(target)  # deliberately ambiguous: overrides single names
            index.fixed_order.add(key)
        else:
            _add(exact, key, target)
    index.exact = {key: tuple(value) for key, value in exact.items()}

    index.fuzzy = _Fuzzy(index.entries)

    # CLDR territory aliases include ISO alpha-3 codes ("DEU" -> ["DE"]).
    for alias, targets in get_global("territory_aliases").items():
        if len(alias) == 3 and alias.isalpha() and len(targets) == 1 and targets[0] in codes:
            index.alpha3[alias.lower()] = targets[0]
    return index


@functools.cache
def _endonyms() -> dict[str, tuple[str, ...]]:
    """Normalized names in other languages -> codes (exact matches only; built lazily)."""
    exact = _index().exact
    codes = _code_set()
    endonyms: dict[str, list[str]] = {}
    official = ("official", "de_facto_official")
    territory_languages = get_global("territory_languages")
    for locale_id in _ENDONYM_LANGS:
        try:
            territories = Locale.parse(locale_id).territories
        except (UnknownLocaleError, ValueError):  # pragma: no cover - depends on Babel data
            continue
        for code in codes:
            status = territory_languages.get(code, {}).get(locale_id, {}).get("official_status")
            if status in official and code in territories:
                for variant in _name_variants(territories[code]):
                    key = _key(variant)
                    if key and key not in exact:
                        _add(endonyms, key, code)
    return {key: tuple(value) for key, value in endonyms.items()}


# ------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class CountryMatch:
    """``code`` is set for one confident match; otherwise ``suggestions`` holds up to five
    codes, best first (possibly none)."""

    code: str | None
    suggestions: tuple[str, ...] = ()


_NO_MATCH = CountryMatch(None, ())


def _flag_code(text: str) -> str | None:
    """Code of a flag emoji ("🇸🇳" -> "SN"), else None."""
    chars = [ch for ch in text.strip() if not ch.isspace()]
    if len(chars) != 2:
        return None
    offsets = [ord(ch) - _REGIONAL_INDICATOR_A for ch in chars]
    if all(0 <= offset < 26 for offset in offsets):
        return "".join(chr(ord("A") + offset) for offset in offsets)
    return None


def _order(codes: Iterable[str], lang: str, key: str, index: _Index) -> tuple[str, ...]:
    """Order several exact hits: names in the user's language first."""
    langs = index.entries.get(key, {})
    return tuple(sorted(codes, key=lambda code: lang not in langs.get(code, ())))


def _result(codes: tuple[str, ...], lang: str, key: str, index: _Index) -> CountryMatch:
    if len(codes) == 1:
        return CountryMatch(codes[0], ())
    ordered = codes if key in index.fixed_order else _order(codes, lang, key, index)
    return CountryMatch(None, tuple(ordered[:_MAX_SUGGESTIONS]))


def _prefix_codes(key: str, lang: str, index: _Index) -> list[str]:
    """Codes having a name that starts with ``key``: user's language first, then shortest."""
    best: dict[str, tuple[bool, int]] = {}
    for candidate, codes in index.entries.items():
        if candidate.startswith(key):
            for code, langs in codes.items():
                rank = (lang not in langs, len(candidate))
                if code not in best or rank < best[code]:
                    best[code] = rank
    names = _names(lang)
    return sorted(best, key=lambda code: (best[code], _sort_key(names[code])))


def _fuzzy_codes(key: str, lang: str, index: _Index) -> list[str]:
    """Codes with a name close to ``key`` (difflib ratio >= cutoff), best first."""
    scores: dict[str, float] = {}
    for ratio, candidate in index.fuzzy.close(key, _FUZZY_CUTOFF):
        for code, langs in index.entries[candidate].items():
            score = ratio + (_LANG_BONUS if lang in langs else 0.0)
            scores[code] = max(score, scores.get(code, 0.0))
    names = _names(lang)
    return sorted(scores, key=lambda code: (-scores[code], _sort_key(names[code])))


def exact_country_codes(text: str) -> tuple[str, ...]:
    """Codes whose name or alias is exactly ``text`` once normalized (no codes, prefixes or
    fuzzy matching). Used by :mod:`bot.timezones` to accept a country typed as a zone."""
    key = _key(text) if len(text) <= _MAX_INPUT else ""
    if not key:
        return ()
    index = _index()
    return index.exact.get(key) or _endonyms().get(key) or ()


def match_country(text: str, lang: str) -> CountryMatch:
    """Match what a person typed to a country code.

    Confident (``code`` set): a name in English, French or Spanish or an alias, ignoring case,
    accents, punctuation and spaces ("cote divoire" -> "CI", "Alemania" -> "DE"); a name in
    the country's own language ("Deutschland"); an upper-case alpha-2 code ("DE"); an alpha-3
    code in any case ("deu"); a flag emoji; a unique prefix of at least four letters
    ("Switz" -> "CH"). Otherwise up to five suggestions, best first: for ambiguous names
    ("Congo" -> CD, CG), short prefixes ("Ma"), a lower-case alpha-2 code ("de" -> DE first)
    and misspellings ("Marocco" -> MA first). Garbage gives no code and no suggestions.
    """
    if not text or len(text) > _MAX_INPUT:
        return _NO_MATCH
    lang = _lang(lang)
    codes_set = _code_set()
    raw = text.strip()

    flag = _flag_code(raw)
    if flag is not None:
        return CountryMatch(flag, ()) if flag in codes_set else _NO_MATCH
    if _ALPHA2_RE.fullmatch(raw) and raw in codes_set:
        return CountryMatch(raw, ())

    key = _key(raw)
    if not key:
        return _NO_MATCH
    index = _index()

    exact = index.exact.get(key)
    if exact:
        return _result(exact, lang, key, index)
    if len(key) == 3 and key.isascii() and key.isalpha() and key in index.alpha3:
        return CountryMatch(index.alpha3[key], ())
    endonym = _endonyms().get(key)
    if endonym:
        return _result(endonym, lang, key, index)

    if len(key) < 2:
        return _NO_MATCH
    lead: list[str] = []
    if len(key) == 2 and key.isascii() and key.upper() in codes_set:
        lead.append(key.upper())  # "de", "Ma": probably a code, but ask
    prefixed = _prefix_codes(key, lang, index)
    if not lead and len(key) >= _PREFIX_MIN and len(prefixed) == 1:
        return CountryMatch(prefixed[0], ())
    if lead or prefixed:
        ordered = lead + [code for code in prefixed if code not in lead]
        return CountryMatch(None, tuple(ordered[:_MAX_SUGGESTIONS]))
    if len(key) < 3:
        return _NO_MATCH
    return CountryMatch(None, tuple(_fuzzy_codes(key, lang, index)[:_MAX_SUGGESTIONS]))


def preload() -> None:
    """Build the matching indexes now (~0.3 s) rather than on the first user's message."""
    _index()
    _endonyms()
