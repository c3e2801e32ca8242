"""The follow-up after the session and its feedback, end to end through the local server."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot import views
from bot.event import EventFileError, load_event
from bot.i18n import I18n
from bot.services.followup import FEEDBACK_COLUMNS, TOO_LATE, FeedbackSummary
from bot.storage import Database, RegistrationData, RegistrationRepo, UserRepo
from bot.storage.deliveries import DeliveryRepo, DeliveryStatus
from bot.storage.feedback import FeedbackCounts
from tests.conftest import BotProcess, Participant, bot_env, write_event

T = I18n()
ADMIN_FR, ADMIN_EN = 900, 901
RECORDING = "https://www.itcilo.org/recordings/pes-fair-recruitment"
BOM = "\ufeff".encode()
QUESTION = "How useful was this webinar for your work?"
SESSION_NUMBER = {"en": "1", "fr": "2", "es": "3"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def text_of(message) -> str:
    return message.plain_text or message.text or ""


def follow_ups(api, user_id: int) -> list:
    """The follow-up messages a user received (in any language)."""
    questions = {T(lang)._(QUESTION) for lang in ("en", "fr", "es")}
    return [
        m
        for m in api.messages_to(user_id)
        if not m.is_edit and any(q in text_of(m) for q in questions)
    ]


def responses(lang: str, count: int, average: str) -> str:
    return (
        T(lang)
        .n_(
            "{count} response, average {average} out of 5",
            "{count} responses, average {average} out of 5",
            count,
        )
        .format(count=count, average=average)
    )


async def sign_up(user: Participant, lang: str, country: str, waits: bool = False) -> None:
    """The whole form through the local server; the session language is the chat's."""
    t = T(lang)
    await user.say("/register")
    for answer in (f"Person {user.id}", f"p{user.id}@example.org", country, "-", "1"):
        question = await user.say(answer)
    question = await user.say(SESSION_NUMBER[lang])
    question = await user.answer(question, t._("Yes, I agree"))
    await user.answer(question, t._("Confirm"))
    if not waits:
        await user.next()  # the calendar file


async def stats_text(api, admin: Participant) -> str:
    stats = await admin.say("/stats")
    await api.next_message(admin.id, predicate=lambda m: m.method == "sendPhoto")
    return text_of(stats)


async def feedback_csv(api, admin: Participant) -> tuple[str, list[dict[str, str]]]:
    header = await admin.say("/feedback")
    document = await api.next_message(admin.id, predicate=lambda m: m.method == "sendDocument")
    assert document.filename.startswith("feedback-") and document.filename.endswith(".csv")
    assert document.document is not None and document.document.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(document.document.decode("utf-8-sig"))))
    return text_of(header), rows


async def test_follow_up_ratings_comments_stats_export_and_erasure(api, bots, tmp_path):
    signed_up = datetime.now(UTC).replace(microsecond=0)
    end = signed_up + timedelta(seconds=20)  # the session ends 20 s after the sign-ups
    file = write_event(
        tmp_path,
        end - timedelta(minutes=90),
        capacity=2,
        follow_up_after="20s",
        recording_url=RECORDING,
    )
    clock = Clock(signed_up)
    bot = await bots.start(file, clock=clock, ADMIN_IDS=f"{ADMIN_FR},{ADMIN_EN}")
    await api.wait_until_polling()
    gone = Participant(api, 3101, "en")
    fr = Participant(api, 3102, "fr")
    es = Participant(api, 3103, "es")
    waiting = Participant(api, 3104, "en")
    await sign_up(gone, "en", "Ghana")
    ask = await gone.say("/unregister")
    await gone.tap(ask, T("en")._("Yes, cancel my registration"))
    await sign_up(fr, "fr", "Sénégal")
    await sign_up(es, "es", "Colombia")
    await sign_up(waiting, "en", "Kenya", waits=True)  # capacity 2: on the waiting list
    repo = RegistrationRepo(bot.db)
    assert (await repo.live(waiting.id)).status == "waiting"

    jobs = bot.app.job_queue.get_jobs_by_name("followup")
    assert len(jobs) == 1
    clock.now = end + timedelta(seconds=20)
    await jobs[0].run(bot.app)

    event = bot.event
    for user, lang in ((fr, "fr"), (es, "es")):
        t = T(lang)
        message = await user.next()
        body = text_of(message)
        assert t._("Thank you for taking part in the webinar!") in body
        assert event.text(lang).title in body and RECORDING in body
        assert all(r.title in body for r in event.text(lang).resources)
        assert t._(QUESTION) in body
        assert message.button_labels == ["1", "2", "3", "4", "5"]
    for user in (gone, waiting):
        assert follow_ups(api, user.id) == []

    await jobs[0].run(bot.app)  # once more: nobody gets it twice
    deliveries = await DeliveryRepo(bot.db).statuses("followup")
    assert deliveries == {
        fr.id: (DeliveryStatus.SENT, None),
        es.id: (DeliveryStatus.SENT, None),
    }

    # A tapped 4 with a comment (a control character stripped, a formula defused later).
    t = T("fr")
    [message] = follow_ups(api, fr.id)
    prompt = await fr.tap(message, "4")
    assert t._("Thank you! You rated the webinar {rating} out of 5.").format(rating=4) in (
        text_of(prompt)
    )
    assert prompt.button_labels == [t._("Skip")]
    done = await fr.say("=1+1 Très utile,\x07 merci !")
    assert text_of(done) == t._("Thank you! Your comment has been passed on to the organisers.")
    # A typed 5, then no comment.
    t = T("es")
    prompt = await es.say(" 5 ")
    assert t._("Thank you! You rated the webinar {rating} out of 5.").format(rating=5) in (
        text_of(prompt)
    )
    thanks = await es.tap(prompt, t._("Skip"))
    assert text_of(thanks) == t._("Thank you for your feedback!")
    # Someone the follow-up was not sent to (on the waiting list): a digit is just a message.
    other = await waiting.say("5")
    assert text_of(other) == T("en")._(
        "To see your registration, send /myregistration. For everything else, /help."
    )

    admin_fr, admin_en = Participant(api, ADMIN_FR, "fr"), Participant(api, ADMIN_EN, "en")
    text = await stats_text(api, admin_fr)
    assert responses("fr", 2, "4,5") in text  # "2 réponses, moyenne de 4,5 sur 5"
    assert T("fr")._("Comments: {count}").format(count=1) in text
    for rating, count, share in ((5, 1, "50\u00a0%"), (4, 1, "50\u00a0%"), (1, 0, "0\u00a0%")):
        line = T("fr")._("Rated {rating}: {count} ({share})")
        assert line.format(rating=rating, count=count, share=share) in text
    assert responses("en", 2, "4.5") in await stats_text(api, admin_en)

    header, rows = await feedback_csv(api, admin_fr)
    assert "=1+1 Très utile, merci !" in header and responses("fr", 2, "4,5") in header
    assert list(rows[0]) == list(FEEDBACK_COLUMNS)
    by_rating = {row["rating"]: row for row in rows}
    assert set(by_rating) == {"4", "5"}
    assert by_rating["4"]["comment"] == "'=1+1 Très utile, merci !"
    assert by_rating["5"]["comment"] == ""
    assert [by_rating[r][k] for r in ("4", "5") for k in ("language", "session_language")] == [
        "fr",
        "fr",
        "es",
        "es",
    ]
    assert by_rating["4"]["country"] == "SN" and by_rating["5"]["country"] == "CO"
    assert by_rating["4"]["country_name"] == "Sénégal"
    assert by_rating["4"]["affiliation"] == "pes"
    assert by_rating["4"]["rated_at_utc"] == (end + timedelta(seconds=20)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    # A later tap changes the rating; no second comment is asked for.
    changed = await fr.tap(message, "2")
    assert text_of(changed) == T("fr")._(
        "Thank you! Your rating is now {rating} out of 5."
    ).format(rating=2)
    assert responses("en", 2, "3.5") in await stats_text(api, admin_en)

    # Erasure: the row and the rating go; a stale press afterwards changes nothing.
    confirm = await es.say("/deletemydata")
    erased_too = T("es")._("Your rating of the webinar and your comment will be erased too.")
    assert erased_too in text_of(confirm)
    await es.tap(confirm, T("es")._("Yes, erase my data"))
    [old] = follow_ups(api, es.id)
    update_id = await api.press_button(es.id, old.message_id, "fb:rate:4")
    answer = await api.wait_for_call(
        lambda c: (
            c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == f"cq{update_id}"
        )
    )
    assert answer.params.get("text") == T("es")._(
        "This button has expired. Please use the latest message."
    )
    assert responses("en", 1, "2.0") in await stats_text(api, admin_en)
    _, rows = await feedback_csv(api, admin_en)
    assert [row["rating"] for row in rows] == ["2"]
    assert await bot.db.fetchone("SELECT 1 FROM feedback WHERE user_id = ?", (es.id,)) is None


async def test_feedback_is_for_admins_in_private(api, bots, tmp_path):
    file = write_event(tmp_path, datetime.now(UTC) - timedelta(days=1))
    await bots.start(file, ADMIN_IDS=str(ADMIN_EN))
    await api.wait_until_polling()
    user = Participant(api, 3201, "fr")
    unknown = T("fr")._("Sorry, I do not know this command. Send /help to see what I can do.")
    assert text_of(await user.say("/feedback")) == unknown
    assert "/feedback" not in text_of(await user.say("/help"))

    admin = Participant(api, ADMIN_EN, "en")
    assert "/feedback" in text_of(await admin.say("/help"))
    scope = {"type": "chat", "chat_id": ADMIN_EN}
    assert "feedback" in [c["command"] for c in api.commands(scope=scope, language_code="es")]
    await api.send_text(ADMIN_EN, "/feedback", chat_id=-100600, chat_type="group")
    refusal = await api.next_message(-100600)
    assert text_of(refusal) == T("en")._("Admin commands work only in a private chat with me.")
    assert text_of(await admin.say("/feedback")) == T("en")._("No feedback yet.")


async def test_comments_are_cleaned_and_limited(api, bots, tmp_path):
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    file = write_event(tmp_path, end - timedelta(minutes=90), follow_up_after="1m")
    await seed(tmp_path / "bot.sqlite3", [(3301, "en")])
    user = Participant(api, 3301, "en")
    bot = await bots.start(file)  # due while the bot was down: sent at start-up
    t = T("en")
    message = await user.next()
    prompt = await user.tap(message, "3")
    too_long = await user.say("x" * 1001)
    assert t._(
        "This comment is too long: {length} characters, {max} at most. Nothing has been sent. "
        "Please shorten it and send it again, or tap Skip."
    ).format(length="1,001", max="1,000") == text_of(too_long)
    await api.send_sticker(user.id)
    hint = await user.next()
    assert text_of(hint) == t._("Please send your comment as text, or tap Skip.")
    thanks = await user.say("Line one\x07\nline two  " + "y" * 980)
    row = await bot.db.fetchone(
        "SELECT rating, comment FROM feedback WHERE user_id = ?", (user.id,)
    )
    assert tuple(row) == (3, "Line one\nline two " + "y" * 980)
    assert text_of(thanks) == t._("Thank you! Your comment has been passed on to the organisers.")
    changed = await user.say("5")  # typed: a change of rating, no second comment asked for
    assert text_of(changed) == t._("Thank you! Your rating is now {rating} out of 5.").format(
        rating=5
    )
    # Skip once the comment is in: the button has expired.
    update_id = await api.press_button(user.id, prompt.message_id, "fb:skip")
    answer = await api.wait_for_call(
        lambda c: (
            c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == f"cq{update_id}"
        )
    )
    assert answer.params.get("text") == t._(
        "This button has expired. Please use the latest message."
    )
    # A forged rating from someone who never got the follow-up changes nothing.
    stranger = Participant(api, 3302, "en")
    await stranger.say("/start")
    await api.press_button(stranger.id, message.message_id, "fb:rate:1", check=False)
    assert text_of(await stranger.say("/help")).startswith(t._("Here is what I can do:"))
    assert await bot.db.fetchone("SELECT 1 FROM feedback WHERE user_id = 3302") is None


async def seed(path: Path, people: list[tuple[int, str]], capacity: int | None = None) -> None:
    db = Database(path)
    await db.open()
    try:
        users, registrations = UserRepo(db), RegistrationRepo(db)
        for user_id, lang in people:
            await users.ensure(user_id, lang)
            data = RegistrationData(
                f"Person {user_id}", f"p{user_id}@example.org", "SN", None, "pes", lang
            )
            await registrations.create(user_id, data, lang, None, capacity)
    finally:
        await db.close()


async def test_late_follow_up_window_and_off(api, bots, tmp_path):
    end = datetime.now(UTC) - timedelta(days=8)
    file = write_event(tmp_path, end - timedelta(minutes=90))
    await seed(tmp_path / "bot.sqlite3", [(3401, "fr"), (3402, "es")])
    bot = await bots.start(file)
    await api.wait_until_polling()
    assert bot.app.job_queue.get_jobs_by_name("followup") == ()
    assert await DeliveryRepo(bot.db).statuses("followup") == {
        3401: (DeliveryStatus.SKIPPED, TOO_LATE),
        3402: (DeliveryStatus.SKIPPED, TOO_LATE),
    }
    await bot.close()
    assert follow_ups(api, 3401) == follow_ups(api, 3402) == []

    off = write_event(tmp_path, end, follow_up_after="off", name="off.toml")
    bot = await bots.start(off)
    await api.wait_until_polling()
    assert bot.app.job_queue.get_jobs_by_name("followup") == ()
    await bot.close()


async def ended_with_four_registrants(api, tmp_path: Path) -> BotProcess:
    """A session that ended 30 s ago, follow-up 20 s after the end (so due while the bot was
    down: sent at start-up): 3501 (fr) and 3502 (es) registered, 3503 waiting, 3504 cancelled.
    """
    end = datetime.now(UTC) - timedelta(seconds=30)
    file = write_event(tmp_path, end - timedelta(minutes=90), follow_up_after="20s", capacity=2)
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path, [(3501, "fr"), (3502, "es"), (3503, "en")], capacity=2)  # 3503 waits
    await seed(db_path, [(3504, "en")])
    db = Database(db_path)
    await db.open()
    try:
        await RegistrationRepo(db).cancel(3504, capacity=2)
    finally:
        await db.close()
    return BotProcess(bot_env(api, tmp_path, file), tmp_path / "bot.log")


async def follow_up_statuses(db_path: Path) -> dict[int, tuple[DeliveryStatus, str | None]]:
    db = Database(db_path)
    await db.open()
    try:
        return await DeliveryRepo(db).statuses("followup")
    finally:
        await db.close()


async def sent_follow_ups(db_path: Path, count: int) -> None:
    """Wait (bounded) until `count` follow-ups are recorded sent by the running bot."""
    async with asyncio.timeout(30):
        while True:
            statuses = await follow_up_statuses(db_path)
            if sum(s == (DeliveryStatus.SENT, None) for s in statuses.values()) >= count:
                return
            await asyncio.sleep(0.02)  # polling the bot's database: nothing to await on


async def test_kill_9_right_after_it_went_out_sends_nobody_a_second_one(api, tmp_path):
    process = await ended_with_four_registrants(api, tmp_path)
    fr, es = Participant(api, 3501, "fr"), Participant(api, 3502, "es")
    try:
        process.start()
        first = await fr.next(timeout=30)
        second = await es.next(timeout=30)
        await sent_follow_ups(tmp_path / "bot.sqlite3", 2)
        process.kill()  # right after both went out and were recorded
        for message in (first, second):
            assert message.button_labels == ["1", "2", "3", "4", "5"]

        process.start()
        answer = await fr.tap(first, "4", timeout=30)  # handled once start-up is over
        assert T("fr")._("Thank you! You rated the webinar {rating} out of 5.").format(
            rating=4
        ) in text_of(answer)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    assert len(follow_ups(api, fr.id)) == len(follow_ups(api, es.id)) == 1
    assert follow_ups(api, 3503) == follow_ups(api, 3504) == []
    statuses = await follow_up_statuses(tmp_path / "bot.sqlite3")
    assert statuses == {fr.id: (DeliveryStatus.SENT, None), es.id: (DeliveryStatus.SENT, None)}


async def test_a_follow_up_on_the_wire_at_a_kill_is_sent_again(api, tmp_path):
    process = await ended_with_four_registrants(api, tmp_path)
    fr, es = Participant(api, 3501, "fr"), Participant(api, 3502, "es")
    # The Spanish follow-up is on the wire at the kill (maybe delivered): sent again after
    # the restart, so that nobody is left without it. Here the held request is then refused,
    # so it arrives once.
    hold = api.hold("sendMessage", chat_id=es.id)
    try:
        process.start()
        first = await fr.next(timeout=30)
        await asyncio.wait_for(hold.reached.wait(), timeout=30)
        process.kill()
        hold.release()

        process.start()
        again = await es.next(timeout=30)
        assert again.button_labels == ["1", "2", "3", "4", "5"]
        await api.send_text(fr.id, "/help")  # answered once start-up is over
        help_text = T("fr")._("Here is what I can do:")
        await api.wait_for(lambda m: help_text in text_of(m), chat_id=fr.id, timeout=30)
        assert await process.terminate() == 0
    finally:
        process.kill_if_running()

    assert follow_ups(api, fr.id) == [first]
    assert follow_ups(api, es.id) == [again]
    statuses = await follow_up_statuses(tmp_path / "bot.sqlite3")
    assert statuses == {fr.id: (DeliveryStatus.SENT, None), es.id: (DeliveryStatus.SENT, None)}
    assert "follow-up(s) on the wire at a crash: sent again" in process.log()


# --- the event file ---------------------------------------------------------------------------


def test_follow_up_settings_in_the_event_file(tmp_path):
    start = datetime(2030, 6, 13, 14, 0, tzinfo=UTC)
    event = load_event(write_event(tmp_path, start))
    assert event.follow_up_after == timedelta(hours=1) and event.recording_url is None
    event = load_event(
        write_event(tmp_path, start, follow_up_after="20s", recording_url=RECORDING)
    )
    assert event.follow_up_after == timedelta(seconds=20) and event.recording_url == RECORDING
    assert load_event(write_event(tmp_path, start, follow_up_after="off")).follow_up_after is None
    assert load_event(write_event(tmp_path, start, follow_up_after="1d")).follow_up_after == (
        timedelta(days=1)
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('follow_up_after = "soon"', "[event].follow_up_after: expected a positive whole number"),
        ("follow_up_after = 3600", "[event].follow_up_after: expected a positive whole number"),
        ('follow_up_after = "0s"', "[event].follow_up_after: expected a positive whole number"),
        ('follow_up_after = "7d"', "[event].follow_up_after: must be less than 7d after the end"),
        ('recording_url = "http://x.org/r"', "[event].recording_url: expected an https:// URL"),
        ('recording_url = "recording"', "[event].recording_url: expected an https:// URL"),
    ],
)
def test_bad_follow_up_settings_name_the_key(tmp_path, line, message):
    path = write_event(tmp_path, datetime(2030, 6, 13, 14, 0, tzinfo=UTC))
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with pytest.raises(EventFileError) as error:
        load_event(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_average_has_one_decimal_rounded_half_up():
    counts = FeedbackCounts(
        responses=4, total=17, by_rating={1: 0, 2: 0, 3: 0, 4: 3, 5: 1}, comments=0
    )
    summary = FeedbackSummary.of(counts)  # 4.25
    assert summary.average == Decimal("4.3")
    assert views.rating_average(T("fr"), summary) == "4,3"
    assert views.rating_average(T("en"), summary) == "4.3"
    assert FeedbackSummary.of(FeedbackCounts(0, 0, {}, 0)).average is None
    assert views.feedback_stats(T("es"), FeedbackSummary.of(FeedbackCounts(0, 0, {}, 0))).endswith(
        T("es")._("No feedback yet.")
    )
