"""One person flooding the bot does not hold up anybody else."""

from __future__ import annotations

from bot.i18n import I18n
from bot.polling import FLOOD_BURST, HandledRecord
from bot.storage.meta import HandledUpdateRepo
from tests.conftest import Participant

T = I18n()("en")
FR = I18n()("fr")
HELP = T._("Here is what I can do:")
PLAIN = T._("To register for the webinar, send /register. For everything else, /help.")
NOTICE = (
    "You are sending messages faster than I can read them, so I skipped some. "
    "Please wait a moment, then send your message again."
)


def text_of(message) -> str:
    return message.plain_text or message.text or ""


async def test_a_floods_excess_is_skipped_with_one_notice_and_others_are_served(
    api, bots, future_event_file
):
    flooder, other = Participant(api, 80, "en"), Participant(api, 81, "en")
    french = Participant(api, 82, "fr")
    # All queued before the bot polls, so that they come in one batch (the gate looks at the
    # backlog in the batch in hand): sent one by one to a polling bot, the first few could be
    # fetched alone and all answered.
    ids = [await api.send_text(flooder.id, f"message {i}") for i in range(60)]
    ids += [await api.send_text(french.id, f"message {i}") for i in range(FLOOD_BURST + 1)]
    help_id = await api.send_text(other.id, "/help")
    bot = await bots.start(future_event_file)
    assert HELP in text_of(await other.next())

    answers = [await flooder.next() for _ in range(FLOOD_BURST + 1)]
    assert [text_of(m) for m in answers] == [PLAIN] * FLOOD_BURST + [T._(NOTICE)]
    french_answers = [await french.next() for _ in range(FLOOD_BURST + 1)]
    assert text_of(french_answers[-1]) == FR._(NOTICE) != T._(NOTICE)

    # The rest was recorded as handled, so it is neither answered later nor fetched again.
    await api.wait_until_polling()
    assert api.pending_updates == 0
    assert len(api.messages_to(flooder.id)) == FLOOD_BURST + 1
    stored = HandledRecord(await HandledUpdateRepo(bot.db).since(0))
    assert sorted(stored.entries) == sorted([*ids, help_id])
    assert HELP in text_of(await Participant(api, 83, "en").say("/help"))
