"""The registration conversation: eight questions, one at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from enum import IntEnum
from html import escape
from typing import Any, TypeVar

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import views
from bot.countries import country_name, match_country
from bot.handlers import schedule
from bot.handlers.common import (
    BotContext,
    acknowledge,
    add_conversation,
    answer_expired,
    answer_in_place,
    keyboard,
    reply,
    tr,
)
from bot.handlers.my_registration import show_registration
from bot.i18n import LANGUAGES, N_, Translator
from bot.services.choices import (
    AFFILIATIONS,
    SESSION_LANGUAGES,
    Choice,
    label,
    match_choice,
)
from bot.services.registration import RegistrationClosed
from bot.services.timezone import zone_choices
from bot.services.validation import (
    NAME_MAX,
    ORGANISATION_MAX,
    clean_text,
    fold,
    normalise_email,
)
from bot.storage import RegistrationData

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAFT = "registration"
STEPS = 8
REFUSED_KEPT = 10


class Step(IntEnum):
    NAME = 1
    EMAIL = 2
    COUNTRY = 3
    ORGANISATION = 4
    AFFILIATION = 5
    SESSION_LANGUAGE = 6
    CONSENT = 7
    CONFIRM = 8


def _draft(ctx: BotContext) -> dict[str, Any]:
    assert ctx.user_data is not None
    return ctx.user_data.setdefault(DRAFT, {})


def _choice_keyboard(
    t: Translator, prefix: str, choices: tuple[Choice, ...]
) -> InlineKeyboardMarkup:
    return keyboard(
        [[(f"{i}. {t._(lbl)}", f"reg:{prefix}:{key}")] for i, (key, lbl) in enumerate(choices, 1)]
    )


def _typed_choice(ctx: BotContext, text: str, choices: tuple[Choice, ...]) -> str | None:
    labels = [[ctx.services.i18n(lang)._(lbl) for _, lbl in choices] for lang in LANGUAGES]
    return match_choice(text, choices, labels)


def _question(
    t: Translator, step: Step, draft: dict[str, Any]
) -> tuple[str, InlineKeyboardMarkup | None]:
    head = t._("Step {step} of {total}").format(step=int(step), total=STEPS)
    if step is Step.NAME:
        body = t._("What is your full name? (up to {max} characters)").format(max=NAME_MAX)
        stop = t._("Send /cancel at any time to stop.")
        return f"<b>{head}</b>\n{body}\n\n{stop}", None
    if step is Step.EMAIL:
        body = t._("What is your email address?")
        return f"<b>{head}</b>\n{body}", None
    if step is Step.COUNTRY:
        body = t._("In which country do you work or live? Type its name.")
        return f"<b>{head}</b>\n{body}", None
    if step is Step.ORGANISATION:
        body = t._("What is the name of your organisation? (up to {max} characters)").format(
            max=ORGANISATION_MAX
        )
        return f"<b>{head}</b>\n{body}", keyboard([[(t._("Skip this question"), "reg:org:skip")]])
    if step is Step.AFFILIATION:
        body = t._("Which best describes you? Tap a button or type its number.")
        return f"<b>{head}</b>\n{body}", _choice_keyboard(t, "aff", AFFILIATIONS)
    if step is Step.SESSION_LANGUAGE:
        body = t._(
            "In which language will you follow the session? English is the main language; "
            "interpretation is provided into French and Spanish."
        )
        return f"<b>{head}</b>\n{body}", _choice_keyboard(t, "slang", SESSION_LANGUAGES)
    if step is Step.CONSENT:
        body = t._(
            "Privacy notice: the ILO will use your name, email, country, organisation and "
            "affiliation only to organise this webinar and send you information about it. "
            "Your data are not shared with third parties. You can erase them at any time "
            "with /deletemydata.\n\nDo you agree to the use of your data for this event?"
        )
        markup = keyboard(
            [[(t._("Yes, I agree"), "reg:consent:yes")], [(t._("No"), "reg:consent:no")]]
        )
        return f"<b>{head}</b>\n{body}", markup
    data = _data(draft)
    body = t._("Please check your details:") + "\n\n" + views.registration_summary(t, data)
    markup = keyboard(
        [[(t._("Confirm"), "reg:confirm:yes")], [(t._("Start over"), "reg:confirm:restart")]]
    )
    return f"<b>{head}</b>\n{body}", markup


def _data(draft: dict[str, Any]) -> RegistrationData:
    return RegistrationData(
        full_name=draft["name"],
        email=draft["email"],
        country=draft["country"],
        organisation=draft.get("org"),
        affiliation=draft["aff"],
        session_language=draft["slang"],
    )


async def _answering(pressed: CallbackQuery | None, sending: Awaitable[T]) -> T:
    """Await `sending`; meanwhile answer the button `pressed`, if any, and remove its keyboard.

    In parallel rather than first: the user sees the next message one round trip sooner.
    """
    if pressed is None:
        return await sending
    result, _ = await asyncio.gather(sending, acknowledge(pressed, remove_keyboard=True))
    return result


async def ask(
    update: Update,
    ctx: BotContext,
    step: Step,
    prefix: str = "",
    *,
    pressed: CallbackQuery | None = None,
    answered: str = "",
) -> Step:
    """Ask the question of `step` (after an optional hint) and remember its message.

    After a typed answer the question is a new message. After a button press (`pressed`) the
    message of that button becomes the question, in one edit: a registration then costs one
    request per answer, tapped or typed. `answered` (what the button said, e.g. "Country:
    Senegal") stays on top of it, so the person still sees what they chose; the summary at
    step 8 shows every answer.

    Stale presses stay refused as expired: each step takes only its own `reg:<step>:` buttons
    (a late or replayed press of an earlier step on the same, edited message is not one of
    them), and only on the message in `draft["q"]` (see `_button`). A typed answer therefore
    leaves the keyboard of the question it answered in place rather than spend a request on
    removing it; editing that question into the next one instead would put the next question
    above the typed answer.
    """
    t = await tr(update, ctx)
    draft = _draft(ctx)
    text, markup = _question(t, step, draft)
    if prefix:
        text = f"{prefix}\n\n{text}"
    if pressed is None:
        message_id = await reply(update, text, markup)
    else:
        if answered:
            text = f"✓ {answered}\n\n{text}"
        message_id = await answer_in_place(update, pressed, text, markup)
    _asked(update, draft, step, message_id)
    return step


def _asked(update: Update, draft: dict[str, Any], step: Step, message_id: int) -> None:
    """Record that `step` is now asked by message `message_id`.

    Asked again (a hint and the same question), the step keeps the ids of the messages it
    refused in `draft["refused"]` (the last REFUSED_KEPT, so that a flood does not grow the
    stored draft): an edit of one of them is an answer to the current question (see
    `edited`). Moving to another step forgets them.
    """
    if draft.get("step") != int(step):
        draft["refused"] = []
    elif update.message is not None or update.edited_message is not None:
        refused = update.effective_message
        assert refused is not None
        kept: list[int] = draft.get("refused", [])
        if refused.message_id not in kept:
            draft["refused"] = [*kept, refused.message_id][-REFUSED_KEPT:]
    draft["q"] = message_id
    draft["step"] = int(step)


async def _say(update: Update, pressed: CallbackQuery | None, text: str) -> None:
    """`text` as the answer to a typed message (a new message) or to the button `pressed` (its
    message becomes `text`: the summary turns into the confirmation, which repeats it)."""
    if pressed is None:
        await reply(update, text)
    else:
        await answer_in_place(update, pressed, text)


def _answer_text(update: Update) -> str:
    """The text of a typed answer: a new message, or an edit that counts as one (`edited`)."""
    message = update.effective_message
    assert message is not None and message.text is not None
    return message.text


def _current_step(ctx: BotContext) -> Step:
    return Step(_draft(ctx).get("step", Step.NAME))


async def _button(update: Update, ctx: BotContext) -> str | None:
    """The value of a button on the current question, or None (answered as expired).

    The press is acknowledged by what the handler sends next (`pressed=` of `ask`).
    """
    query = update.callback_query
    assert query is not None and query.data is not None
    message = query.message
    if message is None or message.message_id != _draft(ctx).get("q"):
        await answer_expired(update, ctx)
        return None
    return query.data.rsplit(":", 1)[1]


# --- entry -------------------------------------------------------------------------------


async def begin(update: Update, ctx: BotContext) -> int:
    """/register: open the form unless closed or already registered."""
    if update.callback_query:
        await acknowledge(update.callback_query)
    t = await tr(update, ctx)
    services = ctx.services
    user = update.effective_user
    assert user is not None
    existing = await services.registrations.current(user.id)
    if existing is not None:
        await show_registration(update, ctx, t, existing_note=True)
        return ConversationHandler.END
    if not services.registrations.is_open():
        await reply(update, views.closed(t, services.event, services.clock()))
        return ConversationHandler.END
    await services.users.start(user.id, user.language_code, None)
    assert ctx.user_data is not None
    ctx.user_data[DRAFT] = {}
    intro = t._("Let us register you. There are {total} short steps.").format(total=STEPS)
    return await ask(update, ctx, Step.NAME, intro)


# --- steps -------------------------------------------------------------------------------


async def got_name(update: Update, ctx: BotContext) -> Step:
    t = await tr(update, ctx)
    name = clean_text(_answer_text(update))
    if not name:
        return await ask(update, ctx, Step.NAME, t._("Please type your name."))
    if len(name) > NAME_MAX:
        hint = t._("This name is too long: {max} characters at most.").format(max=NAME_MAX)
        return await ask(update, ctx, Step.NAME, hint)
    _draft(ctx)["name"] = name
    return await ask(update, ctx, Step.EMAIL)


async def got_email(update: Update, ctx: BotContext) -> Step:
    t = await tr(update, ctx)
    email = normalise_email(clean_text(_answer_text(update)))
    if email is None:
        hint = t._(
            "This does not look like a valid email address. Please check it and type it again, "
            "for example: name@example.org"
        )
        return await ask(update, ctx, Step.EMAIL, hint)
    _draft(ctx)["email"] = email
    return await ask(update, ctx, Step.COUNTRY)


async def got_country_text(update: Update, ctx: BotContext) -> Step:
    t = await tr(update, ctx)
    match = match_country(clean_text(_answer_text(update)), t.lang)
    if match.code is not None:
        return await _country_chosen(update, ctx, match.code)
    draft = _draft(ctx)
    if match.suggestions:
        text = t.n_(
            "I could not find this country. Did you mean this one? Tap it, or type the name "
            "again.",
            "I could not find this country. Did you mean one of these? Tap the right one, or "
            "type the name again.",
            len(match.suggestions),
        )
        markup = keyboard(
            [[(country_name(code, t.lang), f"reg:country:{code}")] for code in match.suggestions]
        )
        draft["offered"] = list(match.suggestions)
        _asked(update, draft, Step.COUNTRY, await reply(update, text, markup))
        return Step.COUNTRY
    hint = t._(
        "I could not find this country. Please type its full name, for example: {example}"
    ).format(example=country_name("SN", t.lang))
    return await ask(update, ctx, Step.COUNTRY, hint)


async def got_country_button(update: Update, ctx: BotContext) -> Step | None:
    code = await _button(update, ctx)
    if code is None:
        return None
    if code not in _draft(ctx).get("offered", ()):  # a forged value: only what was offered
        await answer_expired(update, ctx)
        return None
    return await _country_chosen(update, ctx, code, update.callback_query)


async def _country_chosen(
    update: Update, ctx: BotContext, code: str, pressed: CallbackQuery | None = None
) -> Step:
    _draft(ctx)["country"] = code
    t = await tr(update, ctx)
    answered = t.label(t._("Country"), escape(country_name(code, t.lang)))
    return await ask(update, ctx, Step.ORGANISATION, pressed=pressed, answered=answered)


async def got_organisation(update: Update, ctx: BotContext) -> Step:
    t = await tr(update, ctx)
    text = clean_text(_answer_text(update))
    skip_words = {fold(ctx.services.i18n(lang)._("Skip this question")) for lang in LANGUAGES}
    # Only punctuation ("-", "—", ".") also means no organisation.
    if not fold(text) or fold(text) in skip_words | {"skip", "passer", "omitir", "none"}:
        _draft(ctx)["org"] = None
    elif len(text) > ORGANISATION_MAX:
        hint = t._("This name is too long: {max} characters at most.").format(max=ORGANISATION_MAX)
        return await ask(update, ctx, Step.ORGANISATION, hint)
    else:
        _draft(ctx)["org"] = text
    return await ask(update, ctx, Step.AFFILIATION)


async def skip_organisation(update: Update, ctx: BotContext) -> Step | None:
    if await _button(update, ctx) is None:
        return None
    _draft(ctx)["org"] = None
    t = await tr(update, ctx)
    answered = t.label(t._("Organisation"), "—")
    return await ask(
        update, ctx, Step.AFFILIATION, pressed=update.callback_query, answered=answered
    )


async def _choose(
    update: Update,
    ctx: BotContext,
    key: str | None,
    field: tuple[str, str],
    step: Step,
    choices: tuple[Choice, ...],
    pressed: CallbackQuery | None = None,
) -> Step | None:
    t = await tr(update, ctx)
    if key is None or key not in dict(choices):
        hint = t._("Please tap one of the buttons or type its number (1 to {n}).").format(
            n=len(choices)
        )
        return await ask(update, ctx, step, hint, pressed=pressed)
    name, title = field
    _draft(ctx)[name] = key
    answered = t.label(t._(title), escape(t._(label(choices, key))))
    return await ask(update, ctx, Step(step + 1), pressed=pressed, answered=answered)


def _choice_handlers(
    field: tuple[str, str], step: Step, choices: tuple[Choice, ...]
) -> tuple[Any, Any]:
    """The typed-answer and button handlers of a step that is a choice among `choices`;
    `field`: the draft key and the msgid of its label in the summary."""

    async def typed(update: Update, ctx: BotContext) -> Step | None:
        text = _answer_text(update)
        key = _typed_choice(ctx, text, choices)
        return await _choose(update, ctx, key, field, step, choices)

    async def tapped(update: Update, ctx: BotContext) -> Step | None:
        key = await _button(update, ctx)
        if key is None:
            return None
        return await _choose(update, ctx, key, field, step, choices, update.callback_query)

    return typed, tapped


YES_NO: tuple[Choice, ...] = (("yes", "Yes, I agree"), ("no", "No"))
CONFIRM_RESTART: tuple[Choice, ...] = (("yes", "Confirm"), ("restart", "Start over"))
_YES_WORDS = {"yes", "y", "oui", "si", "sí", "ok", "i agree", "j accepte", "acepto", "d accord"}
_NO_WORDS = {"no", "n", "non"}


async def _consent(
    update: Update, ctx: BotContext, answer: str | None, pressed: CallbackQuery | None = None
) -> int | None:
    t = await tr(update, ctx)
    if answer == "yes":
        return await ask(update, ctx, Step.CONFIRM, pressed=pressed, answered=t._("Yes, I agree"))
    if answer == "no":
        assert ctx.user_data is not None
        ctx.user_data.pop(DRAFT, None)
        text = t._(
            "Without your consent we cannot register you, and nothing has been stored. "
            "You can start again at any time with /register."
        )
        await _say(update, pressed, text)
        return ConversationHandler.END
    hint = t._("Please tap one of the buttons or type its number (1 to {n}).").format(n=2)
    return await ask(update, ctx, Step.CONSENT, hint, pressed=pressed)


async def got_consent_text(update: Update, ctx: BotContext) -> int | None:
    text = fold(_answer_text(update))
    answer = _typed_choice(ctx, text, YES_NO)
    if answer is None:
        answer = "yes" if text in _YES_WORDS else "no" if text in _NO_WORDS else None
    return await _consent(update, ctx, answer)


async def got_consent_button(update: Update, ctx: BotContext) -> int | None:
    answer = await _button(update, ctx)
    if answer is None:
        return None
    return await _consent(update, ctx, answer, update.callback_query)


async def _confirm(
    update: Update, ctx: BotContext, answer: str | None, pressed: CallbackQuery | None = None
) -> int | None:
    t = await tr(update, ctx)
    if answer == "restart":
        assert ctx.user_data is not None
        ctx.user_data[DRAFT] = {}
        return await ask(update, ctx, Step.NAME, pressed=pressed, answered=t._("Start over"))
    if answer != "yes":
        hint = t._("Please tap one of the buttons or type its number (1 to {n}).").format(n=2)
        return await ask(update, ctx, Step.CONFIRM, hint, pressed=pressed)
    user = update.effective_user
    assert user is not None and ctx.user_data is not None
    services = ctx.services
    try:
        signup = await services.registrations.register(user.id, _data(_draft(ctx)), t.lang)
    except RegistrationClosed:
        ctx.user_data.pop(DRAFT, None)
        await _say(update, pressed, views.closed(t, services.event, services.clock()))
        return ConversationHandler.END
    ctx.user_data.pop(DRAFT, None)
    if not signup.created:
        await _answering(pressed, show_registration(update, ctx, t, existing_note=True))
        return ConversationHandler.END
    # The registration may have set the zone from the country (RegistrationService.register).
    record = await services.users.get(user.id)
    zone = record.timezone if record else None
    registration = signup.registration
    confirmation = views.confirmation(
        t, services.event, registration, signup.position, zone, record.place if record else None
    )
    await _say(update, pressed, confirmation)
    if registration.status == "active":
        await schedule.send_calendar(ctx.bot, services, t, user.id, registration.status)
    if zone is None and len(zone_choices(registration.data.country, services.event.start)) > 1:
        await schedule.offer_zones(
            update, ctx, t, t._("Your country has several time zones. Which one is yours?")
        )
    return ConversationHandler.END


async def got_confirm_text(update: Update, ctx: BotContext) -> int | None:
    return await _confirm(update, ctx, _typed_choice(ctx, _answer_text(update), CONFIRM_RESTART))


async def got_confirm_button(update: Update, ctx: BotContext) -> int | None:
    answer = await _button(update, ctx)
    if answer is None:
        return None
    return await _confirm(update, ctx, answer, update.callback_query)


# --- leaving and unexpected input ---------------------------------------------------------


async def cancel(update: Update, ctx: BotContext) -> int:
    """/cancel inside the form: drop the draft."""
    t = await tr(update, ctx)
    assert ctx.user_data is not None
    ctx.user_data.pop(DRAFT, None)
    await reply(
        update,
        t._(
            "Registration cancelled; nothing has been stored. "
            "You can start again at any time with /register."
        ),
    )
    return ConversationHandler.END


async def unexpected(update: Update, ctx: BotContext) -> Step:
    """A sticker, photo, command… where an answer was expected: hint, then the same question."""
    t = await tr(update, ctx)
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        hint = t._(
            "You are in the middle of your registration. Please answer the question "
            "below, or send /cancel to stop."
        )
    else:
        hint = t._("I can only read text here. Please answer the question below.")
    return await ask(update, ctx, _current_step(ctx), hint)


async def stale_button(update: Update, ctx: BotContext) -> None:
    await answer_expired(update, ctx)


_affiliation = _choice_handlers(("aff", N_("Affiliation")), Step.AFFILIATION, AFFILIATIONS)
_session_language = _choice_handlers(
    ("slang", N_("Session language")), Step.SESSION_LANGUAGE, SESSION_LANGUAGES
)
#: Per step: the handler of a typed answer, and the handler and callback prefix of its buttons.
STEP_HANDLERS: dict[Step, tuple[Any, Any, str]] = {
    Step.NAME: (got_name, None, ""),
    Step.EMAIL: (got_email, None, ""),
    Step.COUNTRY: (got_country_text, got_country_button, "country"),
    Step.ORGANISATION: (got_organisation, skip_organisation, "org"),
    Step.AFFILIATION: (*_affiliation, "aff"),
    Step.SESSION_LANGUAGE: (*_session_language, "slang"),
    Step.CONSENT: (got_consent_text, got_consent_button, "consent"),
    Step.CONFIRM: (got_confirm_text, got_confirm_button, "confirm"),
}


async def edited(update: Update, ctx: BotContext) -> int | None:
    """A message edited in the middle of the form: never an error, and never a command.

    The edit is the answer to the current question when it changes a message this step
    refused (an invalid answer, asked again below it): the new text is answered as if sent
    anew. Any other edit changes nothing and gets a short hint: most often the accepted answer
    to an earlier step (the bot is already at a later question, so that answer counted as
    typed), or a message from before the form. Every answer shows at step 8, where "Start
    over" corrects them.
    """
    message = update.edited_message
    step = _current_step(ctx)
    if (
        message is not None
        and message.text
        and not message.text.startswith("/")
        and message.message_id in _draft(ctx).get("refused", ())
    ):
        typed: Any = STEP_HANDLERS[step][0]
        return await typed(update, ctx)
    t = await tr(update, ctx)
    hint = t._(
        "Editing a message you have already sent does not change your answer. You will see "
        "all your answers at the last step, where “{button}” lets you correct them."
    ).format(button=t._("Start over"))
    await reply(update, hint)
    return None


def _conversation(
    extra_fallbacks: Sequence[BaseHandler[Any, Any, Any]] = (),
) -> ConversationHandler:
    private = filters.ChatType.PRIVATE
    # New messages only: an edit goes to `edited`.
    text = filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND

    def step(on_text: Any, on_button: Any, prefix: str) -> list[Any]:
        handlers: list[Any] = [MessageHandler(text, on_text)]
        if on_button is not None:
            handlers.append(CallbackQueryHandler(on_button, pattern=rf"^reg:{prefix}:"))
        return handlers

    return ConversationHandler(
        entry_points=[
            CommandHandler("register", begin, private),
            CallbackQueryHandler(begin, pattern=r"^menu:register$"),
        ],
        states={key: step(*handlers) for key, handlers in STEP_HANDLERS.items()},
        fallbacks=[
            MessageHandler(filters.UpdateType.EDITED_MESSAGE, edited),
            *extra_fallbacks,
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(stale_button, pattern=r"^(reg:|menu:register$)"),
            # /help, /event and /language still work in the middle of the form.
            MessageHandler(~filters.Regex(r"^/(help|event|language)\b"), unexpected),
        ],
        name="registration",
        persistent=True,
    )


def register(app: Application, fallbacks: Sequence[BaseHandler[Any, Any, Any]] = ()) -> None:
    """`fallbacks`: other features' handlers that work in the middle of the form (first)."""
    add_conversation(app, lambda: _conversation(fallbacks))
