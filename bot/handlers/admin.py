"""Organisers' commands /stats (with a chart) and /export; admins only, in private chats.

Also what the admin commands share: their menu entries, the refusal in groups, CSV sending.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_percent
from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ChatAction, ChatType
from telegram.ext import Application, ApplicationHandlerStop, CallbackQueryHandler, filters
from telegram.ext import CommandHandler as Command

from bot import views
from bot.countries import country_name
from bot.handlers.common import BotContext, acknowledge, admin_only, is_admin, keyboard, reply, tr
from bot.i18n import N_, Translator
from bot.services.chart import ChartLabels, draw_signups
from bot.services.choices import AFFILIATIONS, SESSION_LANGUAGES, label
from bot.services.reports import Stats
from bot.services.timezone import city

log = logging.getLogger(__name__)

# (command, description msgid): added to the command menu and /help of admins only.
ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("stats", N_("Registration statistics and chart")),
    ("export", N_("All registrations as a CSV file")),
    ("questions", N_("Questions sent for the panel")),
    ("broadcast", N_("Send a message to registrants")),
    ("edit", N_("Change the date, links, capacity or deadline")),
    ("feedback", N_("Ratings and comments after the webinar")),
)
# Admin commands refused in groups, where other members would read the answer.
PRIVATE_ONLY = tuple(name for name, _ in ADMIN_COMMANDS)
RECENT_DAYS = 14
DOCUMENT_TIMEOUT = 120  # seconds to upload a large CSV file


# --- /stats ---------------------------------------------------------------------------------


def _number(t: Translator, n: int) -> str:
    return t.number(n)


def _share_lines(
    t: Translator, rows: Sequence[tuple[str, int]], total: int, other: int = 0
) -> list[str]:
    """One line per row, its count and share of `total`: Senegal: 12 (34%)."""
    lines = [
        t._("{label}: {count} ({share})").format(
            label=escape(name),
            count=_number(t, n),
            share=format_percent(n / total, locale=t.lang),
        )
        for name, n in rows
    ]
    if other:
        lines.append(t._("Others: {count}").format(count=_number(t, other)))
    return lines


def _language_name(t: Translator, code: str | None) -> str:
    name = Locale.parse(t.lang).languages.get(code or "", code or "?")
    return name[:1].upper() + name[1:]


def stats_text(t: Translator, stats: Stats, zone: str) -> str:
    """The statistics as short lines with bold headings, readable on a phone."""
    n = stats.current
    blocks = [
        "\n".join(
            [
                "📊 <b>" + t._("Registrations") + "</b>",
                t._("Registered: {count}").format(count=_number(t, stats.active)),
                t._("Waiting list: {count}").format(count=_number(t, stats.waiting)),
                t._("Cancelled: {count}").format(count=_number(t, stats.cancelled)),
            ]
        )
    ]
    if n == 0:
        blocks.append(t._("No current registrations yet."))
        return "\n\n".join(blocks)
    blocks.append(
        t.n_(
            "Below: the {count} current registration, waiting list included.",
            "Below: the {count} current registrations, waiting list included.",
            n,
        ).format(count=_number(t, n))
    )

    def block(title: str, lines: list[str]) -> None:
        blocks.append("\n".join([f"<b>{escape(title)}</b>", *lines]))

    block(
        t._("Chat language"),
        _share_lines(t, [(_language_name(t, c), k) for c, k in stats.languages], n),
    )
    affiliations = [(t._(label(AFFILIATIONS, c or "")), k) for c, k in stats.affiliations]
    block(t._("Affiliation"), _share_lines(t, affiliations, n))
    countries = [(country_name(c, t.lang), k) for c, k in stats.countries]
    block(
        t._("Country (top {count})").format(count=len(countries)),
        _share_lines(t, countries, n, stats.other_countries),
    )
    sessions = [(t._(label(SESSION_LANGUAGES, c or "")), k) for c, k in stats.session_languages]
    block(t._("Session language"), _share_lines(t, sessions, n))
    sources = [(c or t._("no link"), k) for c, k in stats.sources]
    block(t._("Source (deep link)"), _share_lines(t, sources, n, stats.other_sources))
    recent = stats.per_day[-RECENT_DAYS:]
    block(
        t._("Sign-ups per day ({zone} time)").format(zone=zone),
        [
            t.label(format_skeleton("MMMEd", day, locale=t.lang), _number(t, count))
            for day, count in reversed(recent)
        ],
    )
    return "\n\n".join(blocks)


def stats_keyboard(t: Translator) -> InlineKeyboardMarkup:
    return keyboard([[(t._("Refresh"), "adm:stats"), (t._("Export CSV"), "adm:export")]])


async def _send_stats(update: Update, ctx: BotContext) -> None:
    t = await tr(update, ctx)
    services = ctx.services
    stats = await services.reports.stats()
    zone = city(t, services.event.tz.key)
    text = stats_text(t, stats, zone)
    feedback = await services.followup.summary()
    if feedback.responses or services.followup.has_gone_out():
        text += "\n\n" + views.feedback_stats(t, feedback)
    await reply(update, text, stats_keyboard(t))
    if not stats.per_day:
        return
    chat = update.effective_chat
    assert chat is not None
    await chat.send_action(ChatAction.UPLOAD_PHOTO)
    labels = ChartLabels(
        title=t._("Sign-ups ({zone} time)").format(zone=zone),
        daily=t._("New per day"),
        total=t._("Total"),
    )
    png = await draw_signups(stats.per_day, labels, t.lang)  # ChartError: error handler
    caption = t._("Current registrations: {count}").format(count=_number(t, stats.current))
    await chat.send_photo(png, caption=caption, filename="signups.png")


def in_background(update: Update, ctx: BotContext, work: Coroutine[Any, Any, None]) -> None:
    """Run an admin's report beside the update loop: updates are handled one at a time, and
    participants must not wait while a chart is drawn or 100,000 rows are written. Errors go
    to the error handler with the update; a stopping Application waits for the task."""
    ctx.application.create_task(work, update=update)


@admin_only
async def stats(update: Update, ctx: BotContext) -> None:
    """/stats, or the Refresh button under it: counts, breakdowns and the sign-up chart."""
    if update.callback_query is not None:
        await acknowledge(update.callback_query)
    in_background(update, ctx, _send_stats(update, ctx))


# --- /export --------------------------------------------------------------------------------


async def send_csv(
    update: Update, ctx: BotContext, path: Path, filename: str, caption: str
) -> None:
    """Send a CSV file written by a service as a document, then delete it."""
    chat = update.effective_chat
    assert chat is not None
    try:
        await chat.send_action(ChatAction.UPLOAD_DOCUMENT)
        with path.open("rb") as handle:
            # read_file_handle=False: the transport streams the file while uploading;
            # otherwise PTB reads all of it into memory first (17 MB for 100,000 rows).
            await chat.send_document(
                InputFile(handle, filename=filename, read_file_handle=False),
                caption=caption,
                write_timeout=DOCUMENT_TIMEOUT,
                read_timeout=DOCUMENT_TIMEOUT,
            )
    finally:
        path.unlink(missing_ok=True)


def stamp(ctx: BotContext) -> str:
    """Date and time for file names, in the event's zone: "20230601-1430"."""
    services = ctx.services
    now: datetime = services.clock().astimezone(services.event.tz)
    return now.strftime("%Y%m%d-%H%M")


async def _export(update: Update, ctx: BotContext) -> None:
    t = await tr(update, ctx)
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        await reply(update, private_only_text(t, "export"))
        return
    path, count = await ctx.services.reports.export_registrations(t)
    log.info("Exporting %d registrations", count)
    caption = t.n_("{count} registration", "{count} registrations", count).format(
        count=_number(t, count)
    )
    await send_csv(update, ctx, path, f"registrations-{stamp(ctx)}.csv", caption)


@admin_only
async def export(update: Update, ctx: BotContext) -> None:
    """/export, or the Export CSV button under the statistics: every registration as CSV."""
    if update.callback_query is not None:
        await acknowledge(update.callback_query)
    in_background(update, ctx, _export(update, ctx))


# --- admin commands in groups -----------------------------------------------------------------


def private_only_text(t: Translator, command: str) -> str:
    if command == "export":
        return t._(
            "For the participants' privacy, I send the export only in a private chat with me."
        )
    return t._("Admin commands work only in a private chat with me.")


async def admin_in_group(update: Update, ctx: BotContext) -> None:
    """An admin command in a group: admins are told to use a private chat; anyone else gets
    the answer every command gets in a group (the next handler group), so nothing leaks."""
    user = update.effective_user
    if not is_admin(ctx, user):
        return
    assert user is not None and update.effective_message is not None
    text = update.effective_message.text or ""
    command = text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
    await ctx.services.audit.record(user.id, f"/{command}"[:64], "refused: group chat")
    t = await tr(update, ctx)
    await reply(update, private_only_text(t, command))
    raise ApplicationHandlerStop


def register(app: Application, early_group: int) -> None:
    """Handlers of this module; `early_group` runs before the group answer of `participant`."""
    private = filters.ChatType.PRIVATE
    app.add_handler(Command(PRIVATE_ONLY, admin_in_group, filters.ChatType.GROUPS), early_group)
    app.add_handler(Command("stats", stats, private))
    app.add_handler(Command("export", export, private))
    app.add_handler(CallbackQueryHandler(stats, pattern=r"^adm:stats$"))
    app.add_handler(CallbackQueryHandler(export, pattern=r"^adm:export$"))
