"""Which time zones to offer a participant, and a zone's label in their language."""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.core import get_global

from bot.i18n import N_, Translator
from bot.timezones import is_zone, zone_city, zones_for_country

MAX_CHOICES = 8

# The city people know the event zone by, where it differs from the zone's exemplar city:
# the organisers are in Geneva, whose zone is called Europe/Zurich.
EVENT_CITIES: dict[str, str] = {"Europe/Zurich": N_("Geneva")}


def zone_choices(country: str | None, at: datetime, limit: int = MAX_CHOICES) -> tuple[str, ...]:
    """The country's zones worth a button: one per distinct UTC offset at `at` (the session).

    zone.tab lists many zones that share a clock (ten for Indiana alone) and the times shown
    depend only on the offset at the session. Each offset is shown by its best known zone:
    a major city (`_MAJOR`), else a zone CLDR maps a Windows zone to, else zone.tab's first.
    The order stays zone.tab's, roughly geographical (United States: east to west).
    """
    if not country:
        return ()
    groups: dict[object, list[str]] = {}
    for zone in zones_for_country(country):
        groups.setdefault(at.astimezone(ZoneInfo(zone)).utcoffset(), []).append(zone)
    chosen = [max(zones, key=_renown) for zones in groups.values()]  # max keeps the first tie
    return tuple(chosen[:limit])


# Where most people of a multi-zone country live, for the offsets they share with smaller
# places (Sydney rather than Hobart, Toronto rather than Blanc-Sablon).
_MAJOR = frozenset(
    {
        "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
        "America/Toronto", "America/Winnipeg", "America/Edmonton", "America/Vancouver",
        "America/Halifax", "America/Sao_Paulo", "America/Manaus", "America/Mexico_City",
        "America/Santiago", "Australia/Sydney", "Australia/Adelaide", "Australia/Perth",
        "Europe/Moscow", "Europe/Kyiv", "Europe/Madrid", "Europe/Lisbon", "Asia/Jakarta",
        "Asia/Almaty", "Asia/Shanghai", "Africa/Kinshasa", "Pacific/Auckland", "Pacific/Honolulu",
    }
)  # fmt: skip


@functools.cache
def _golden_zones() -> frozenset[str]:
    """Zones CLDR maps Windows zones to (names made canonical: America/Indianapolis...)."""
    aliases: dict[str, str] = get_global("zone_aliases")
    return frozenset(aliases.get(z, z) for z in get_global("windows_zone_mapping").values())


def _renown(zone: str) -> tuple[bool, bool]:
    return zone in _MAJOR, zone in _golden_zones()


def default_zone(country: str | None, at: datetime) -> str | None:
    """The zone to assume for someone from `country`: its only one, or the one standing for all
    when they share the same offset at `at` (Argentina's twelve zones); None when it differs."""
    zones = zone_choices(country, at)
    return zones[0] if len(zones) == 1 else None


FALLBACK_EXAMPLE = "Africa/Dakar"


def example_zone(country: str | None, at: datetime) -> str:
    """A zone whose city makes a good example for someone from `country`: its best known one
    (Mexico City for Mexico, São Paulo for Brazil); Dakar when the country is not known."""
    zones = zone_choices(country, at)
    return max(zones, key=_renown) if zones else FALLBACK_EXAMPLE


def zone_label(t: Translator, zone: str, at: datetime, place: str | None = None) -> str:
    """ "Bogotá (UTC-05:00)": the city in the reader's language (or `place`, the city the
    user typed) and the offset at `at`."""
    return t._("{city} ({offset})").format(
        city=place or city(t, zone), offset=t.utc_offset(at, ZoneInfo(zone))
    )


def city(t: Translator, zone: str, place: str | None = None) -> str:
    """The zone's city in the reader's language ("Geneva" for the event's Europe/Zurich), or
    `place`, the city the user typed for it ("Montréal" for America/Toronto)."""
    if place:
        return place
    return t._(EVENT_CITIES[zone]) if zone in EVENT_CITIES else zone_city(zone, t.lang)


def valid_zone(name: str | None) -> str | None:
    """`name` when it is a usable IANA zone, else None (forged or stale button data)."""
    return name if name and is_zone(name) else None
