"""/timezone: the zone from the country, picked from city buttons or typed; times in both zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import views
from bot.event import load_event
from bot.i18n import I18n
from bot.services.timezone import default_zone, zone_choices, zone_label
from bot.timezones import match_zone
from tests.conftest import Participant, write_event

T = I18n()
SUMMER = datetime(2023, 6, 15, 13, 30, tzinfo=UTC)
WINTER = datetime(2023, 12, 14, 14, 30, tzinfo=UTC)


def text_of(message) -> str:
    return message.plain_text or message.text or message.caption or ""


# --- which zones to offer -------------------------------------------------------------------


def test_one_button_per_clock_with_the_best_known_city():
    assert zone_choices("US", SUMMER) == (
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "America/Anchorage",
        "America/Adak",
        "Pacific/Honolulu",
    )
    assert zone_choices("AU", SUMMER)[1] == "Australia/Sydney"  # not Macquarie or Hobart
    assert "America/Sao_Paulo" in zone_choices("BR", SUMMER)
    assert zone_choices("CD", SUMMER) == ("Africa/Kinshasa", "Africa/Lubumbashi")
    assert len(zone_choices("RU", SUMMER)) == 8  # eleven clocks: the rest can be typed
    assert zone_choices("ZZ", SUMMER) == zone_choices(None, SUMMER) == ()


def test_grouping_follows_the_offsets_on_the_day():
    # Brisbane keeps +10 all year; Sydney is +10 in June and +11 in December.
    assert "Australia/Brisbane" not in zone_choices("AU", SUMMER)
    assert "Australia/Brisbane" in zone_choices("AU", WINTER)


def test_default_zone_when_all_the_clocks_agree():
    assert default_zone("SN", SUMMER) == "Africa/Dakar"
    assert default_zone("CH", SUMMER) == "Europe/Zurich"
    assert default_zone("AR", SUMMER) == "America/Argentina/Buenos_Aires"  # 12 zones, one clock
    assert default_zone("UA", SUMMER) == "Europe/Kyiv"
    assert default_zone("MX", SUMMER) is None
    assert default_zone("ZZ", SUMMER) is None


def test_labels_are_localised_with_the_offset_of_the_day():
    assert zone_label(T("es"), "America/Bogota", SUMMER) == "Bogotá (GMT-05:00)"
    assert zone_label(T("fr"), "Europe/Zurich", SUMMER) == f"{T('fr')._('Geneva')} (UTC+02:00)"
    assert zone_label(T("en"), "Europe/Zurich", WINTER).endswith("(GMT+01:00)")


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture
def start() -> datetime:
    return (datetime.now(UTC) + timedelta(days=20)).replace(minute=30, second=0, microsecond=0)


@pytest.fixture
async def running(bots, tmp_path, start):
    return await bots.start(write_event(tmp_path, start))


async def sign_up(user: Participant, lang: str, country: str):
    t = T(lang)
    await user.say("/register")
    for answer in ("Awa Diop", "awa@example.org", country, "-", "1", "1"):
        q = await user.say(answer)
    q = await user.answer(q, t._("Yes, I agree"))
    confirmation = await user.answer(q, t._("Confirm"))
    document = await user.next()
    assert document.method == "sendDocument"
    return confirmation


def local_times(lang: str, start: datetime, zone: str) -> str:
    return T(lang).time_range(start, start + timedelta(minutes=90), ZoneInfo(zone))


async def stored_zone(bot, user_id: int) -> str | None:
    record = await bot.app.bot_data["services"].users.get(user_id)
    return record.timezone if record else None


async def test_single_zone_country_sets_the_zone_and_every_view_shows_both(api, running, start):
    user = Participant(api, 1200, "fr")
    confirmation = await sign_up(user, "fr", "Sénégal")
    assert await stored_zone(running, 1200) == "Africa/Dakar"
    dakar = local_times("fr", start, "Africa/Dakar")
    geneva = local_times("fr", start, "Europe/Zurich")
    for message in (confirmation, await user.say("/myregistration"), await user.say("/event")):
        body = text_of(message)
        assert "Dakar" in body and dakar in body and geneva in body
        assert T("fr").utc_offset(start, ZoneInfo("Africa/Dakar")) in body


async def test_multi_zone_country_is_asked_after_confirmation(api, running, start):
    t = T("es")
    user = Participant(api, 1201, "es")
    await sign_up(user, "es", "México")
    assert await stored_zone(running, 1201) is None
    prompt = await user.next()
    assert t._("Your country has several time zones. Which one is yours?") in text_of(prompt)
    label = zone_label(t, "America/Mexico_City", start)
    assert label in prompt.button_labels
    assert t._("Use the event's time zone ({city})").format(city=t._("Geneva")) in (
        prompt.button_labels
    )
    done = await user.tap(prompt, label)
    assert await stored_zone(running, 1201) == "America/Mexico_City"
    assert local_times("es", start, "America/Mexico_City") in text_of(done)


async def test_typed_city_forgiving_with_suggestions(api, running, start):
    t = T("en")
    user = Participant(api, 1202, "en")
    prompt = await user.say("/timezone")
    assert t._("Use the event's time zone ({city})").format(city="Geneva") in prompt.button_labels
    nothing = await user.say("Xqzvbn")
    assert "could not find this place" in text_of(nothing)
    suggestions = await user.say("Nairobbi")  # misspelt: suggested, not guessed
    label = zone_label(t, "Africa/Nairobi", start)
    assert label in suggestions.button_labels
    assert await stored_zone(running, 1202) is None
    done = await user.tap(suggestions, label)
    assert "Nairobi" in text_of(done) and local_times("en", start, "Africa/Nairobi") in text_of(
        done
    )
    assert await stored_zone(running, 1202) == "Africa/Nairobi"
    # Once set, text is chatter again, not a city.
    reply = await user.say("Bogota")
    assert "/register" in text_of(reply)
    assert await stored_zone(running, 1202) == "Africa/Nairobi"
    await user.say("/timezone")
    await user.say("ciudad de mexico")
    assert await stored_zone(running, 1202) == "America/Mexico_City"
    await user.say("/timezone")
    await user.say("america/new york")
    assert await stored_zone(running, 1202) == "America/New_York"


async def test_a_command_drops_the_prompt_and_cancel_says_so(api, running):
    t = T("fr")
    user = Participant(api, 1203, "fr")
    await user.say("/timezone")
    await user.say("/help")
    later = await user.say("Lima")  # no longer read as a city
    assert "/register" in text_of(later)
    await user.say("/timezone")
    cancelled = await user.say("/cancel")
    assert text_of(cancelled) == t._("All right, your time zone is unchanged.")
    assert await stored_zone(running, 1203) is None


async def test_event_zone_button_and_forged_buttons(api, running, start):
    t = T("en")
    user = Participant(api, 1204, "en")
    prompt = await user.say("/timezone")
    event_button = t._("Use the event's time zone ({city})").format(city="Geneva")
    for forged in ("tz:set:Mars/Olympus_Mons", "tz:set:", "tz:set:../../etc/passwd", "tz:x"):
        update_id = await api.press_button(1204, prompt.message_id, forged, check=False)
        await api.wait_for_call(
            lambda c, u=update_id: (
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == f"cq{u}"
            )
        )
        assert "expired" in (api.callback_answer(update_id) or {}).get("text", "")
    assert await stored_zone(running, 1204) is None
    done = await user.tap(prompt, event_button)
    assert await stored_zone(running, 1204) == "Europe/Zurich"
    assert local_times("en", start, "Europe/Zurich") in text_of(done)
    details = await user.say("/event")
    # Only the event's zone, plus the date_time entity that clients show in the reader's clock.
    assert "Your time" not in text_of(details)
    assert f'unix="{int(start.timestamp())}"' in (details.text or "")


async def test_the_prompt_survives_a_restart(api, bots, tmp_path, start):
    event_file = write_event(tmp_path, start)
    first = await bots.start(event_file)
    user = Participant(api, 1205, "es")
    await user.say("/timezone")
    await first.close()
    second = await bots.start(event_file)
    done = await user.say("Lima")
    assert await stored_zone(second, 1205) == "America/Lima"
    assert local_times("es", start, "America/Lima") in text_of(done)


# --- whose time, and the place typed ---------------------------------------------------------


def test_before_the_zone_is_known_the_start_says_whose_time_it_is(tmp_path):
    """Apps that do not render the date_time entity show its text: it must name Geneva, not
    pass Geneva's 15:30 for the reader's own time."""
    event = load_event(write_event(tmp_path, SUMMER))
    for lang, city in (
        ("en", "Geneva time"),
        ("fr", "heure de Genève"),
        ("es", "hora de Ginebra"),
    ):
        t = T(lang)
        lines = views.when_lines(t, event, None)
        start = lines[2]
        assert start.startswith("🌍 ") and f'unix="{int(SUMMER.timestamp())}"' in start
        entity_text = start.split(">", 1)[1].split("</tg-time>")[0]
        assert city in entity_text and t.utc_offset(SUMMER, event.tz) in entity_text
        assert t._("Your time ({city}): {time} ({offset})").split("(")[0] not in "\n".join(lines)
        assert lines[3] == t._("To see the times in your own time zone, send /timezone.")
    # In the event's zone: the entity stays, without the hint; in another zone: the reader's.
    assert len(views.when_lines(T("en"), event, "Europe/Zurich")) == 3
    mine = views.when_lines(T("en"), event, "America/Toronto", "Montréal")
    toronto = T("en").time_range(event.start, event.end, ZoneInfo("America/Toronto"))
    assert toronto.startswith("09:30")
    assert mine[2] == f"🏠 Your time (Montréal): {toronto} (GMT-04:00)"


@pytest.mark.parametrize(
    ("typed", "zone", "place"),
    [
        ("Montréal", "America/Toronto", "Montréal"),
        ("montreal, Canada", "America/Toronto", "Montreal"),
        ("Ottawa", "America/Toronto", "Ottawa"),
        ("Toronto", "America/Toronto", None),
        ("Bogota", "America/Bogota", None),
        ("Nueva York", "America/New_York", None),
        ("Senegal", "Africa/Dakar", None),
    ],
)
def test_a_typed_city_known_by_another_zone_keeps_its_name(typed, zone, place):
    found = match_zone(typed, "fr")
    assert (found.zone, found.place) == (zone, place)


async def test_typed_montreal_labels_the_times_in_later_messages(api, running):
    user = Participant(api, 1206, "fr")
    await user.say("/timezone")
    done = await user.say("Montréal")
    assert "Montréal (UTC\u22120" in text_of(done) and "Toronto" not in text_of(done)
    assert await stored_zone(running, 1206) == "America/Toronto"
    details = await user.say("/event")
    assert "Votre heure locale (Montréal)" in text_of(details)
    await user.next()  # the programme
    again = await user.say("/timezone")
    assert "Montréal (UTC\u22120" in text_of(again).split("\n")[0]
    # Typed by the zone's own city name, the zone is named by it again.
    typed = await user.say("Toronto")
    assert "Toronto (UTC\u22120" in text_of(typed) and "Montréal" not in text_of(typed)
