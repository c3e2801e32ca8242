"""IANA time zones per country, localized exemplar cities and forgiving zone matching.

Pure data and logic: no Telegram imports and no user-facing sentences. The country -> zones
mapping is tzdata's ``zone.tab`` (one row per country, e.g. SN -> Africa/Dakar), city names
come from Babel (CLDR exemplar cities) plus a short list of major cities that are not zone
exemplars (Geneva, Washington, Rabat...).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass, field

from babel.dates import get_timezone_location

from bot.countries import (
    SUPPORTED,
    _Fuzzy,
    _key,
    _lang,
    _read_tzdata,
    exact_country_codes,
)
from bot.countries import preload as _preload_countries

__all__ = [
    "ZoneMatch",
    "is_zone",
    "match_zone",
    "preload",
    "single_zone",
    "zone_city",
    "zones_for_country",
]

# Countries missing from zone.tab that people do live in.
_EXTRA_COUNTRY_ZONES: dict[str, tuple[str, ...]] = {"XK": ("Europe/Belgrade",)}

# Names in available_timezones() that are not usable zones.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})
_NOT_ZONE_PREFIXES = ("posix/", "right/", "SystemV/")

# What people type for UTC. "GMT" is taken as UTC too (no daylight saving time).
_UTC = "Etc/UTC"
_UTC_ALIASES = frozenset(
    _key(text, articles=False)
    for text in (
        "UTC", "GMT", "Z", "Zulu", "UCT", "Universal", "Greenwich", "Coordinated Universal Time",
        "Universal Time", "Greenwich Mean Time", "Temps universel", "Temps universel coordonné",
        "Tiempo universal", "Tiempo universal coordinado",
    )
)  # fmt: skip

# Major cities (in English, French and Spanish, plus former names) that are not CLDR
# exemplar cities, mapped to their zone.tab zone. A name under several zones is ambiguous
# unless the user's country settles it ("San José": Costa Rica or California).
_EXTRA_CITIES: dict[str, tuple[str, ...]] = {
    "Europe/Zurich": ("Geneva", "Genève", "Ginebra", "Genf", "Bern", "Berne", "Berna", "Basel",
                      "Bâle", "Lausanne"),
    "America/New_York": ("Washington", "Washington DC", "Boston", "Philadelphia", "Atlanta",
                         "Miami", "NYC"),
    "America/Chicago": ("Houston", "Dallas", "San Antonio", "Austin"),
    "America/Los_Angeles": ("San Francisco", "Seattle", "San Diego", "Las Vegas", "San José",
                            "San Jose"),
    "America/Toronto": ("Ottawa", "Montreal", "Montréal", "Quebec", "Québec"),
    "America/Sao_Paulo": ("Rio de Janeiro", "Río de Janeiro", "Brasília", "Belo Horizonte",
                          "Porto Alegre", "Curitiba", "Salvador de Bahia"),
    "America/Guayaquil": ("Quito",),
    "America/Bogota": ("Medellín", "Cali", "Barranquilla", "Cartagena de Indias"),
    "America/Mexico_City": ("Guadalajara", "Puebla", "CDMX", "Mexico DF"),
    "America/La_Paz": ("Santa Cruz", "Santa Cruz de la Sierra", "Sucre", "Cochabamba"),
    "Atlantic/Canary": ("Santa Cruz", "Santa Cruz de Tenerife", "Tenerife", "Las Palmas",
                        "Gran Canaria"),
    "America/Santiago": ("Valparaíso",),
    "America/Costa_Rica": ("San José", "San Jose"),
    "America/El_Salvador": ("San Salvador",),
    "America/Guatemala": ("Guatemala City", "Ciudad de Guatemala"),
    "America/Panama": ("Panama City", "Ciudad de Panamá"),
    "America/Havana": ("La Habana",),
    "America/Caracas": ("Maracaibo", "Valencia"),
    "America/Puerto_Rico": ("San Juan",),
    "Africa/Lagos": ("Abuja", "Ibadan", "Kano"),
    "Africa/Abidjan": ("Yamoussoukro", "Bouaké"),
    "Africa/Casablanca": ("Rabat", "Marrakech", "Marrakesh", "Fès", "Fez", "Tanger", "Tangier",
                          "Agadir"),
    "Africa/Algiers": ("Oran",),
    "Africa/Cairo": ("Alexandria", "Alexandrie", "Alejandría"),
    "Africa/Johannesburg": ("Pretoria", "Cape Town", "Le Cap", "Ciudad del Cabo", "Durban"),
    "Africa/Dar_es_Salaam": ("Dodoma",),
    "Africa/Douala": ("Yaoundé",),
    "Africa/Porto-Novo": ("Cotonou",),
    "Africa/Nairobi": ("Mombasa",),
    "Africa/Lubumbashi": ("Goma", "Bukavu"),
    "Europe/Belgrade": ("Pristina", "Priština", "Prishtina"),
    "Asia/Kolkata": ("New Delhi", "Delhi", "Mumbai", "Bombay", "Bangalore", "Bengaluru",
                     "Chennai", "Madras", "Calcutta"),
    "Asia/Karachi": ("Islamabad", "Lahore"),
    "Asia/Shanghai": ("Beijing", "Pékin", "Pekín", "Peking", "Guangzhou", "Shenzhen",
                      "Chongqing"),
    "Asia/Ho_Chi_Minh": ("Hanoi", "Saigon"),
    "Asia/Dhaka": ("Dacca",),
    "Asia/Kathmandu": ("Katmandu",),
    "Asia/Yangon": ("Rangoon",),
    "Asia/Riyadh": ("Jeddah", "Djeddah", "Yeda", "Mecca"),
    "Asia/Dubai": ("Abu Dhabi", "Abou Dabi", "Abu Dabi", "Sharjah"),
    "Asia/Jerusalem": ("Tel Aviv",),
    "Europe/Istanbul": ("Ankara", "Izmir"),
    "Asia/Manila": ("Quezon City", "Cebu"),
    "Asia/Jakarta": ("Bandung", "Surabaya"),
    "Asia/Tokyo": ("Osaka", "Kyoto"),
    "Australia/Sydney": ("Canberra",),
    "Pacific/Auckland": ("Wellington",),
    "Europe/London": ("Edinburgh", "Édimbourg", "Edimburgo", "Manchester", "Birmingham",
                      "Glasgow", "Cardiff", "Belfast"),
    "Europe/Paris": ("Lyon", "Marseille", "Marsella", "Toulouse", "Bordeaux", "Lille", "Nice",
                     "Strasbourg", "Estrasburgo"),
    "Europe/Berlin": ("Munich", "München", "Múnich", "Frankfurt", "Francfort", "Fráncfort",
                      "Hamburg", "Hambourg", "Hamburgo", "Cologne", "Köln", "Colonia", "Bonn"),
    "Europe/Madrid": ("Barcelona", "Barcelone", "Valencia", "Valence", "Sevilla", "Séville",
                      "Seville", "Bilbao", "Málaga"),
    "Europe/Rome": ("Milan", "Milano", "Milán", "Naples", "Napoli", "Nápoles", "Turin",
                    "Torino", "Turín", "Florence", "Firenze", "Florencia", "Venice", "Venise",
                    "Venecia"),
    "Europe/Amsterdam": ("The Hague", "La Haye", "La Haya", "Den Haag", "Rotterdam"),
    "Europe/Brussels": ("Antwerp", "Anvers", "Amberes", "Liège", "Lieja", "Ghent", "Gand"),
    "Europe/Lisbon": ("Porto", "Oporto"),
    "Europe/Moscow": ("Saint Petersburg", "Saint-Pétersbourg", "San Petersburgo"),
    "Europe/Kyiv": ("Kiev",),
    "Europe/Warsaw": ("Kraków", "Cracow", "Cracovie", "Cracovia"),
}  # fmt: skip

_PREFIX_MIN = 4
_FUZZY_CUTOFF = 0.75
_MAX_SUGGESTIONS = 5
_MAX_INPUT = 80
_LANG_BONUS = 0.02
_OFFSET_RE = re.compile(r"\s*(?:utc|gmt|ut)?\s*[+\-−±]\s*\d", re.IGNORECASE)
# "EST", "CET", "IST", "WAT": abbreviations are ambiguous or lack daylight saving time.
_ABBREVIATION_RE = re.compile(r"\s*[A-Z]{2,4}\s*")


# ------------------------------------------------------------------------------- the data


@functools.cache
def _zone_tab() -> tuple[tuple[str, str], ...]:
    """(country, zone) rows of zone.tab in file order, plus the extra countries."""
    rows: list[tuple[str, str]] = []
    for line in _read_tzdata("zone.tab").splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            rows.append((fields[0], fields[2]))
    for code, zones in _EXTRA_COUNTRY_ZONES.items():
        rows.extend((code, zone) for zone in zones)
    return tuple(rows)


@functools.cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for code, zone in _zone_tab():
        table.setdefault(code, []).append(zone)
    return {code: tuple(zones) for code, zones in table.items()}


def zones_for_country(code: str) -> tuple[str, ...]:
    """The country's zones from tzdata's zone.tab, in file order; () if unknown."""
    return _country_zones().get(code.upper(), ()) if code else ()


def single_zone(code: str) -> str | None:
    """The country's zone when it has exactly one, else None."""
    zones = zones_for_country(code)
    return zones[0] if len(zones) == 1 else None


@functools.cache
def _valid_zones() -> frozenset[str]:
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONES and not name.startswith(_NOT_ZONE_PREFIXES)
    )


def is_zone(name: str) -> bool:
    """True for an IANA zone name known to zoneinfo (exact spelling, e.g. "Africa/Dakar")."""
    return name in _valid_zones()


def _fallback_city(zone: str) -> str:
    return zone.rsplit("/", 1)[-1].replace("_", " ")


@functools.lru_cache(maxsize=4096)
def _city(zone: str, lang: str) -> str:
    if not is_zone(zone):
        return _fallback_city(zone)
    try:
        city = get_timezone_location(zoneinfo.ZoneInfo(zone), locale=lang, return_city=True)
    except (LookupError, ValueError, OSError):  # pragma: no cover - defensive
        return _fallback_city(zone)
    # Babel falls back to the path after the area ("Argentina/Buenos Aires").
    return _fallback_city(city) if city else _fallback_city(zone)


def zone_city(zone: str, lang: str) -> str:
    """Localized exemplar city of the zone ("America/Bogota", "es" -> "Bogotá"); falls back to
    the last path component with "_" -> " "."""
    return _city(zone, _lang(lang))


# ------------------------------------------------------------------------------- the index


@dataclass(slots=True)
class _Index:
    # normalized city key -> zones (zone.tab order)
    cities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # key -> {zone: languages having that city name ("*" for other names)}
    entries: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # normalized IANA name ("america/newyork") -> IANA name
    names: dict[str, str] = field(default_factory=dict)
    # zone -> countries
    countries: dict[str, frozenset[str]] = field(default_factory=dict)
    # key -> how the names behind it are spelled ("montreal" -> Montreal, Montréal)
    spellings: dict[str, list[str]] = field(default_factory=dict)
    cities_fuzzy: _Fuzzy = field(default_factory=lambda: _Fuzzy(()))
    names_fuzzy: _Fuzzy = field(default_factory=lambda: _Fuzzy(()))


def _iana_key(name: str) -> str:
    """Matching key of an IANA name ("america/new york" -> "america/newyork")."""
    return "/".join(_key(part, articles=False) for part in name.split("/"))


@functools.cache
def _index() -> _Index:
    index = _Index()
    order = {zone: position for position, (_, zone) in enumerate(_zone_tab())}
    countries: dict[str, set[str]] = {}
    for code, zone in _zone_tab():
        countries.setdefault(zone, set()).add(code)
    index.countries = {zone: frozenset(codes) for zone, codes in countries.items()}

    def add(name: str, zone: str, lang: str) -> None:
        key = _key(name, articles=False)
        if key:
            index.entries.setdefault(key, {}).setdefault(zone, set()).add(lang)
            spellings = index.spellings.setdefault(key, [])
            if name not in spellings:
                spellings.append(name)

    for zone in order:
        add(_fallback_city(zone), zone, "*")
        for lang in SUPPORTED:
            add(zone_city(zone, lang), zone, lang)
    for zone, names in _EXTRA_CITIES.items():
        for name in names:
            add(name, zone, "*")
    index.cities = {
        key: tuple(sorted(zones, key=order.__getitem__)) for key, zones in index.entries.items()
    }
    index.cities_fuzzy = _Fuzzy(index.entries)

    for name in _valid_zones():
        # Areas only: legacy names ("EST", "Cuba") and offsets ("Etc/GMT+2", whose sign is
        # inverted) are not accepted.
        if "/" in name and not any(ch.isdigit() for ch in name):
            index.names.setdefault(_iana_key(name), name)
    index.names_fuzzy = _Fuzzy(index.names)
    return index


# ------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class ZoneMatch:
    """``zone`` is set for one confident match; otherwise ``suggestions`` holds up to five
    zone names, best first (possibly none). ``place`` is the city typed when the zone is known
    by another city ("Montréal" for America/Toronto), to label the zone with what was typed."""

    zone: str | None
    suggestions: tuple[str, ...] = ()
    place: str | None = None


_NO_MATCH = ZoneMatch(None, ())


def _with_place(found: ZoneMatch, key: str, typed: str, index: _Index) -> ZoneMatch:
    """`found` with the place typed when its zone's own city names (in any of our languages,
    or its IANA name) are not what was typed: "Montréal" stays "Montréal", not "Toronto"."""
    zone = found.zone
    if zone is None:
        return found
    own = {_key(zone_city(zone, lang), articles=False) for lang in SUPPORTED}
    own.add(_key(_fallback_city(zone), articles=False))
    spellings = index.spellings.get(key, [])
    if key in own or not spellings:
        return found
    typed = typed.strip().casefold()
    place = next((name for name in spellings if name.casefold() == typed), spellings[0])
    return ZoneMatch(zone, (), place)


def _choose(zones: tuple[str, ...], country: str | None, index: _Index) -> ZoneMatch:
    """One zone -> match. Several -> the country's only one if it has exactly one among them,
    else suggestions with the country's first."""
    if len(zones) == 1:
        return ZoneMatch(zones[0], ())
    if country:
        local = [zone for zone in zones if country in index.countries.get(zone, ())]
        if len(local) == 1:
            return ZoneMatch(local[0], ())
        zones = tuple(local) + tuple(zone for zone in zones if zone not in local)
    return ZoneMatch(None, zones[:_MAX_SUGGESTIONS])


def _ranked(scored: dict[str, float], country: str | None, index: _Index) -> tuple[str, ...]:
    def rank(zone: str) -> tuple[bool, float, str]:
        local = bool(country) and country in index.countries.get(zone, ())
        return (not local, -scored[zone], zone)

    return tuple(sorted(scored, key=rank)[:_MAX_SUGGESTIONS])


def _prefix(key: str, lang: str, country: str | None, index: _Index) -> ZoneMatch | None:
    scored: dict[str, float] = {}
    for candidate, zones in index.entries.items():
        if candidate.startswith(key):
            for zone, langs in zones.items():
                # Shorter names are closer to what was typed; the user's language wins ties.
                score = len(key) / len(candidate) + (_LANG_BONUS if lang in langs else 0.0)
                scored[zone] = max(score, scored.get(zone, 0.0))
    if not scored:
        return None
    if len(scored) == 1 and len(key) >= _PREFIX_MIN:
        return ZoneMatch(next(iter(scored)), ())
    return ZoneMatch(None, _ranked(scored, country, index))


def _fuzzy(key: str, lang: str, country: str | None, index: _Index) -> ZoneMatch:
    scored: dict[str, float] = {}
    for ratio, candidate in index.cities_fuzzy.close(key, _FUZZY_CUTOFF):
        for zone, langs in index.entries[candidate].items():
            score = ratio + (_LANG_BONUS if lang in langs else 0.0)
            scored[zone] = max(score, scored.get(zone, 0.0))
    return ZoneMatch(None, _ranked(scored, country, index))


def _match_path(text: str, country: str | None, index: _Index) -> ZoneMatch:
    """Input with a "/": an IANA name, forgiving case, spaces, "_" and "-"."""
    key = _iana_key(text.strip().strip("/"))
    name = index.names.get(key)
    if name:
        return ZoneMatch(name, ())
    if any(ch.isdigit() for ch in key):
        return _NO_MATCH
    scored: dict[str, float] = {}
    city = index.cities.get(key.rsplit("/", 1)[-1], ())
    for zone in city:  # "Europe/Geneva": a known city under a wrong area
        scored[zone] = 1.0
    for ratio, candidate in index.names_fuzzy.close(key, _FUZZY_CUTOFF):
        zone = index.names[candidate]
        scored[zone] = max(ratio, scored.get(zone, 0.0))
    return ZoneMatch(None, _ranked(scored, country, index))


def match_zone(text: str, lang: str, country: str | None = None) -> ZoneMatch:
    """Match what a user typed to an IANA zone.

    Confident (``zone`` set): an IANA name in any case, with spaces or underscores
    ("america/new york"); a city name in English, French or Spanish, accents optional
    ("Bogota", "Ciudad de Mexico", "Nueva York", "Genève"); "UTC"/"GMT" -> "Etc/UTC"; the
    name of a country that has a single zone ("Senegal" -> "Africa/Dakar"); a unique prefix
    of at least four letters. With ``country`` (ISO code), a name shared by several zones is
    settled by the country's one, and the country's zones come first among suggestions.
    Otherwise up to five suggested zones, best first: misspellings, short prefixes, a
    multi-zone country. Offsets ("UTC+2") and garbage give no zone and no suggestions.
    """
    if not text or len(text) > _MAX_INPUT:
        return _NO_MATCH
    lang = _lang(lang)
    country = country.upper() if country else None
    index = _index()
    if "/" in text:
        return _match_path(text, country, index)
    if _OFFSET_RE.match(text):
        return _NO_MATCH

    # "Dakar, Senegal" / "Genève (Suisse)": also try the part before the comma/parenthesis.
    head = re.split(r"[,(]", text, maxsplit=1)[0]
    attempts = [text] if head.strip() == text.strip() else [text, head]
    for attempt in attempts:
        key = _key(attempt, articles=False)
        if not key or any(ch.isdigit() for ch in key):
            continue
        zones = index.cities.get(key)
        if zones:
            return _with_place(_choose(zones, country, index), key, attempt, index)
        if key in _UTC_ALIASES:
            return ZoneMatch(_UTC, ())
        # A country name (never a 2-3 letter code: "EST" is Estonia's alpha-3 code).
        codes = exact_country_codes(attempt) if len(key) >= _PREFIX_MIN else ()
        zones = tuple(zone for code in codes for zone in zones_for_country(code))
        if zones:
            return _choose(zones, country, index)
    key = _key(head, articles=False)
    if not key or any(ch.isdigit() for ch in key) or _ABBREVIATION_RE.fullmatch(head):
        return _NO_MATCH
    if len(key) < 2:
        return _NO_MATCH
    found = _prefix(key, lang, country, index)
    if found:
        return found
    if len(key) < 3:
        return _NO_MATCH
    return _fuzzy(key, lang, country, index)


def preload() -> None:
    """Build the country and city indexes now rather than on the first user's message."""
    _preload_countries()
    _index()
