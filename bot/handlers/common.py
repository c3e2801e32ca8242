"""What every handler module shares: the typed context, translators, keyboards."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.error import BadRequest
from telegram.ext import Application, CallbackContext, ConversationHandler, ExtBot
from telegram.warnings import PTBUserWarning

from bot.i18n import Translator
from bot.services import Services

SERVICES_KEY = "services"
AUDIT_DETAIL_MAX = 1000  # characters of a typed text kept in the audit log
AdminCallback = TypeVar("AdminCallback", bound=Callable[..., Awaitable[Any]])


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """CallbackContext that hands the services to handlers."""

    @property
    def services(self) -> Services:
        return self.application.bot_data[SERVICES_KEY]


async def translator_for(ctx: BotContext, user: User | None) -> Translator:
    if user is None:
        return ctx.services.i18n(None)
    lang = await ctx.services.users.language(user.id, user.language_code)
    return ctx.services.i18n(lang)


async def tr(update: Update, ctx: BotContext) -> Translator:
    """The translator for the user behind an update."""
    return await translator_for(ctx, update.effective_user)


def keyboard(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Inline keyboard from rows of (label, callback data)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> int:
    """Send `text` to the chat of the update; returns the new message id."""
    chat = update.effective_chat
    assert chat is not None
    message = await chat.send_message(text, reply_markup=markup)
    return message.message_id


def add_conversation(
    app: Application, build: Callable[[], ConversationHandler], group: int = 0
) -> None:
    """Build and add a conversation that mixes typed answers and buttons.

    Such a conversation must stay per_message=False, and PTB warns about a CallbackQueryHandler
    in it; the combination is chosen knowingly, so that one warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"If 'per_message=False'", category=PTBUserWarning
        )
        app.add_handler(build(), group)


async def acknowledge(query: CallbackQuery, *, remove_keyboard: bool = False) -> None:
    """Answer a button press, and remove its keyboard, in one round trip.

    For a press handled again after a crash Telegram refuses both ("query is too old",
    "message is not modified"); that changes nothing for the user and must not stop the step.
    """
    requests = [query.answer()]
    # An inaccessible message (date 0) cannot be edited; its buttons stay, and answer expired.
    if remove_keyboard and query.message is not None and query.message.is_accessible:
        requests.append(query.edit_message_reply_markup(None))
    await asyncio.gather(*(_refusal_ignored(request) for request in requests))


async def _refusal_ignored(request: Awaitable[object]) -> None:
    with contextlib.suppress(BadRequest):
        await request


async def answer_in_place(
    update: Update, query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> int:
    """Answer the press `query` and turn its message into `text` with `markup` (one edit, in
    parallel with the answer); returns the id of the message that now shows `text`.

    "Message is not modified" means it already shows `text` (a press handled again after a
    crash): done. A message that cannot be edited (deleted by the user, inaccessible) gets
    `text` as a new message instead.
    """
    message = query.message
    if not isinstance(message, Message):
        await acknowledge(query)
        return await reply(update, text, markup)

    async def edit() -> int | None:
        try:
            await message.edit_text(text, reply_markup=markup)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                return None
        return message.message_id

    edited, _ = await asyncio.gather(edit(), acknowledge(query))
    if edited is None:
        return await reply(update, text, markup)
    return edited


def is_admin(ctx: BotContext, user: User | None) -> bool:
    return user is not None and user.id in ctx.services.settings.admin_ids


def admin_only(callback: AdminCallback) -> AdminCallback:
    """Run `callback` for admins; anyone else gets exactly the unknown-command answer (or the
    expired-button answer for a button), so admin features do not reveal themselves. Every
    admin call is written to the audit log."""

    @functools.wraps(callback)
    async def guarded(update: Update, ctx: BotContext) -> Any:
        user = update.effective_user
        if not is_admin(ctx, user):
            if update.callback_query is not None:
                await answer_expired(update, ctx)
            else:
                await unknown_command(update, ctx)
            return None
        assert user is not None
        action, detail = _audit_entry(update, callback)
        await ctx.services.audit.record(user.id, action[:64], detail)
        return await callback(update, ctx)

    return guarded  # type: ignore[return-value]


def _audit_entry(update: Update, callback: Callable[..., Any]) -> tuple[str, str | None]:
    """(action, detail) for the audit log: the command ("/stats"), the button ("button
    adm:stats"), or for anything else the handler ("broadcast.got_text") with the text as the
    detail, never the text's first word as if it were an action."""
    if update.callback_query is not None:
        return f"button {update.callback_query.data}", None
    message = update.effective_message
    text = (message.text or message.caption or "") if message is not None else ""
    if text.startswith("/"):
        return text.split(maxsplit=1)[0], None
    handler = f"{callback.__module__.rsplit('.', 1)[-1]}.{callback.__name__}"
    return handler, text[:AUDIT_DETAIL_MAX] or None


async def unknown_command(update: Update, ctx: BotContext) -> None:
    """Any command the user may not use or that does not exist."""
    t = await tr(update, ctx)
    await reply(update, t._("Sorry, I do not know this command. Send /help to see what I can do."))


async def answer_expired(update: Update, ctx: BotContext) -> None:
    """Answer a stale or forged button press; changes nothing."""
    t = await tr(update, ctx)
    if update.callback_query:
        # Refused for a press handled again after a crash ("query is too old"): nothing to do.
        await _refusal_ignored(
            update.callback_query.answer(
                t._("This button has expired. Please use the latest message."), show_alert=True
            )
        )
