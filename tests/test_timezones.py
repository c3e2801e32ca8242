"""Tests for bot.timezones: zones per country, localized cities and forgiving matching."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bot.countries import country_codes
from bot.timezones import (
    _EXTRA_CITIES,
    ZoneMatch,
    _index,
    _zone_tab,
    is_zone,
    match_zone,
    preload,
    single_zone,
    zone_city,
    zones_for_country,
)


def confident(text: str, lang: str = "en", country: str | None = None) -> str | None:
    result = match_zone(text, lang, country)
    assert result.zone is None or result.suggestions == (), result
    return result.zone


def suggested(text: str, lang: str = "en", country: str | None = None) -> tuple[str, ...]:
    result = match_zone(text, lang, country)
    assert result.zone is None, result
    return result.suggestions


# ---------------------------------------------------------------------- zones per country


def test_zones_for_country():
    assert zones_for_country("SN") == ("Africa/Dakar",)
    assert zones_for_country("OM") == ("Asia/Muscat",)
    assert zones_for_country("CD") == ("Africa/Kinshasa", "Africa/Lubumbashi")
    assert zones_for_country("sn") == ("Africa/Dakar",)
    assert zones_for_country("XK") == ("Europe/Belgrade",)
    assert len(zones_for_country("MX")) > 1
    assert zones_for_country("US")[0] == "America/New_York"  # file order
    assert zones_for_country("ZZ") == ()
    assert zones_for_country("") == ()


def test_single_zone():
    assert single_zone("SN") == "Africa/Dakar"
    assert single_zone("CI") == "Africa/Abidjan"
    assert single_zone("CO") == "America/Bogota"
    assert single_zone("CH") == "Europe/Zurich"
    assert single_zone("MX") is None
    assert single_zone("CD") is None
    assert single_zone("ZZ") is None


def test_every_listed_zone_loads():
    zones = {zone for code in country_codes() for zone in zones_for_country(code)}
    assert len(zones) > 400
    for zone in zones:
        assert is_zone(zone), zone
        ZoneInfo(zone)


def test_nearly_every_country_has_zones():
    missing = {code for code in country_codes() if not zones_for_country(code)}
    assert missing <= {"BV", "HM"}  # uninhabited


def test_extra_cities_point_to_zone_tab_zones():
    listed = {zone for _, zone in _zone_tab()}
    assert set(_EXTRA_CITIES) <= listed


# -------------------------------------------------------------------------------- is_zone


def test_is_zone():
    assert is_zone("Africa/Dakar")
    assert is_zone("America/Argentina/Buenos_Aires")
    assert is_zone("Etc/UTC")
    assert is_zone("UTC")
    for name in ("localtime", "Factory", "posixrules", "posix/Europe/Paris", "right/UTC",
                 "africa/dakar", "Europe/Geneva", "", "Mars/Olympus_Mons"):  # fmt: skip
        assert not is_zone(name), name


# ------------------------------------------------------------------------------ zone_city


@pytest.mark.parametrize(
    ("zone", "lang", "city"),
    [
        ("America/Bogota", "es", "Bogotá"),
        ("America/Bogota", "en", "Bogota"),
        ("America/Mexico_City", "es", "Ciudad de México"),
        ("America/Mexico_City", "en", "Mexico City"),
        ("America/New_York", "es", "Nueva York"),
        ("Africa/Dakar", "fr", "Dakar"),
        ("Africa/Cairo", "fr", "Le Caire"),
        ("America/Argentina/Buenos_Aires", "es", "Buenos Aires"),
        ("America/Indiana/Indianapolis", "en", "Indianapolis"),
        ("Europe/Nowhere_Land", "en", "Nowhere Land"),
        ("Nonsense", "fr", "Nonsense"),
    ],
)
def test_zone_city(zone, lang, city):
    assert zone_city(zone, lang) == city


def test_zone_city_for_every_listed_zone():
    for _, zone in _zone_tab():
        for lang in ("en", "fr", "es"):
            city = zone_city(zone, lang)
            assert city and "/" not in city and "_" not in city, (zone, lang, city)


# ------------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("america/new york", "America/New_York"),
        ("America/New_York", "America/New_York"),
        ("AMERICA/NEW-YORK", "America/New_York"),
        ("Europe/Paris", "Europe/Paris"),
        ("europe / paris", "Europe/Paris"),
        ("america/argentina/buenos aires", "America/Argentina/Buenos_Aires"),
        ("America/Port au Prince", "America/Port-au-Prince"),
        ("Etc/UTC", "Etc/UTC"),
    ],
)
def test_iana_names(text, zone):
    assert confident(text) == zone


@pytest.mark.parametrize(
    ("text", "lang", "zone"),
    [
        ("Bogota", "en", "America/Bogota"),
        ("Bogotá", "es", "America/Bogota"),
        ("bogota", "fr", "America/Bogota"),
        ("Ciudad de Mexico", "es", "America/Mexico_City"),
        ("Ciudad de México", "en", "America/Mexico_City"),
        ("Mexico City", "en", "America/Mexico_City"),
        ("Genève", "fr", "Europe/Zurich"),
        ("Geneve", "fr", "Europe/Zurich"),
        ("Geneva", "en", "Europe/Zurich"),
        ("Ginebra", "es", "Europe/Zurich"),
        ("New York", "en", "America/New_York"),
        ("new york", "es", "America/New_York"),
        ("Nueva York", "es", "America/New_York"),
        ("Dakar", "fr", "Africa/Dakar"),
        ("Abidjan", "fr", "Africa/Abidjan"),
        ("Kinshasa", "fr", "Africa/Kinshasa"),
        ("Le Caire", "fr", "Africa/Cairo"),
        ("El Cairo", "es", "Africa/Cairo"),
        ("Londres", "fr", "Europe/London"),
        ("Buenos Aires", "es", "America/Argentina/Buenos_Aires"),
        ("Sao Paulo", "es", "America/Sao_Paulo"),
        ("Calcutta", "en", "Asia/Kolkata"),
        ("Washington", "en", "America/New_York"),
        ("Rabat", "fr", "Africa/Casablanca"),
        ("Dakar, Senegal", "fr", "Africa/Dakar"),
        ("Genève (Suisse)", "fr", "Europe/Zurich"),
    ],
)
def test_cities(text, lang, zone):
    assert confident(text, lang) == zone


@pytest.mark.parametrize("text", ["UTC", "utc", "GMT", "Etc/UTC", "Zulu", "Temps universel"])
def test_utc(text):
    assert confident(text) in {"Etc/UTC"}


@pytest.mark.parametrize(
    "text", ["UTC+2", "utc+2", "UTC +2", "GMT-5", "+03:00", "-3", "UTC+0", "Etc/GMT+2", "GMT+1"]
)
def test_offsets_are_not_zones(text):
    assert match_zone(text, "en") == ZoneMatch(None, ())


@pytest.mark.parametrize("text", ["EST", "CET", "PST", "IST", "WAT", "CEST"])
def test_ambiguous_abbreviations_are_rejected(text):
    # "EST" is also Estonia's alpha-3 code; it must not become Europe/Tallinn.
    assert match_zone(text, "en") == ZoneMatch(None, ())


@pytest.mark.parametrize(
    "text", ["", " ", "!!!", "asdfgh", "qwertyuiop", "x" * 500, "12345", "🙂", "a"]
)
def test_garbage(text):
    assert match_zone(text, "en") == ZoneMatch(None, ())


@pytest.mark.parametrize(
    ("text", "lang", "zone"),
    [
        ("Bogta", "es", "America/Bogota"),
        ("Pariss", "fr", "Europe/Paris"),
        ("Nueva Yrok", "es", "America/New_York"),
        ("Ciudad de Mexco", "es", "America/Mexico_City"),
        ("Genevre", "en", "Europe/Zurich"),
        ("america/bogata", "en", "America/Bogota"),
        ("Europe/Geneva", "en", "Europe/Zurich"),
    ],
)
def test_misspellings_are_suggestions_only(text, lang, zone):
    suggestions = suggested(text, lang)
    assert suggestions[0] == zone
    assert len(suggestions) <= 5


def test_country_settles_shared_city_names():
    assert set(suggested("San José", "es")) == {"America/Costa_Rica", "America/Los_Angeles"}
    assert confident("San José", "es", "CR") == "America/Costa_Rica"
    assert confident("San Jose", "en", "US") == "America/Los_Angeles"
    assert confident("Santa Cruz", "es", "BO") == "America/La_Paz"
    assert confident("Santa Cruz", "es", "es") == "Atlantic/Canary"
    assert confident("San Juan", "es", "AR") == "America/Argentina/San_Juan"
    assert confident("San Juan", "es", "PR") == "America/Puerto_Rico"
    # A city elsewhere is still taken: people travel.
    assert confident("Paris", "fr", "SN") == "Europe/Paris"


def test_country_zones_come_first_in_suggestions():
    assert suggested("Sant", "es", "CL")[0] == "America/Santiago"
    assert suggested("Sant", "es", "DO")[0] == "America/Santo_Domingo"


def test_country_names():
    assert confident("Senegal", "en") == "Africa/Dakar"
    assert confident("Sénégal", "fr") == "Africa/Dakar"
    assert confident("Colombie", "fr") == "America/Bogota"
    mexico = suggested("Mexique", "fr")
    assert mexico and set(mexico) <= set(zones_for_country("MX"))
    assert set(suggested("Congo", "fr")) == {
        "Africa/Kinshasa",
        "Africa/Lubumbashi",
        "Africa/Brazzaville",
    }
    assert confident("Congo", "fr", "CG") == "Africa/Brazzaville"


def test_unique_prefix():
    assert confident("Buenos", "es") == "America/Argentina/Buenos_Aires"
    assert len(suggested("San", "es")) == 5


def test_every_city_name_matches_its_zone():
    for _, zone in _zone_tab():
        for lang in ("en", "fr", "es"):
            city = zone_city(zone, lang)
            result = match_zone(city, lang)
            assert result.zone == zone or zone in result.suggestions, (zone, lang, city)


def test_index_is_cached():
    assert _index() is _index()


def test_preload():
    preload()
    assert match_zone("Dakar", "en").zone == "Africa/Dakar"
