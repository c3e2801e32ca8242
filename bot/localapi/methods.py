"""Bot API methods that send, edit and configure (everything except updates/webhooks)."""

from __future__ import annotations

import copy
import time
from typing import Any

from .chats import ChatStore
from .formatting import FormattingError, render
from .state import JSON, ApiError, Req, SentMessage, UploadedFile, api_method, utf16_len

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}


def _check_markup(markup: Any) -> JSON | None:
    """Validate ``reply_markup`` like Telegram does; returns it (None when absent)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, "Bad Request: can't parse inline keyboard markup")
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
        if len(button) < 2:
            raise ApiError(
                400,
                "Bad Request: can't parse inline keyboard button: "
                "Text buttons are unallowed in the inline keyboard",
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= 64:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _check_edit_markup(markup: Any) -> JSON | None:
    """``reply_markup`` of an edit: Telegram takes an inline keyboard there, nothing else."""
    checked = _check_markup(markup)
    if checked is not None and "inline_keyboard" not in checked:
        raise ApiError(400, "Bad Request: inline keyboard expected")
    return checked


def _inline(markup: JSON | None) -> JSON | None:
    """The part of a markup Telegram echoes in the Message (inline keyboards only)."""
    return markup if markup and "inline_keyboard" in markup else None


class BotMethods(ChatStore):
    """Mixin implementing the message and configuration methods."""

    def _init_methods(self) -> None:
        self._files: dict[str, UploadedFile] = {}
        self._file_seq = 0

    # -- helpers ---------------------------------------------------------------------------

    def _formatted(
        self, req: Req, key: str, limit: int, *, required: bool
    ) -> tuple[str | None, str | None, list[JSON] | None]:
        """``(raw, plain, entities)`` of the ``text``/``caption`` parameter."""
        raw = req.get(key)
        if raw is None or raw == "":
            if required:
                raise ApiError(400, "Bad Request: message text is empty")
            return None, None, None
        raw = str(raw)
        entity_key = "entities" if key == "text" else "caption_entities"
        try:
            plain, entities = render(raw, req.get("parse_mode"), req.get(entity_key))
        except FormattingError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if required and not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > limit:
            what = "message is too long" if key == "text" else "message caption is too long"
            raise ApiError(400, f"Bad Request: {what}")
        return raw, plain, entities

    def _send_new(self, req: Req, content: JSON, record: SentMessage) -> JSON:
        """Store a new bot message with ``content`` and record it; returns the Message."""
        chat_id = req.chat_id()
        markup = _check_markup(req.get("reply_markup"))
        reply = req.get("reply_parameters") or {}
        if req.get("reply_to_message_id") is not None:
            reply = {"message_id": req.get("reply_to_message_id")}
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            replied = self._messages.get(chat_id, {}).get(Req(reply).get_int("message_id"))
            if replied is not None:
                content["reply_to_message"] = copy.deepcopy(replied)
                content["reply_to_message"].pop("reply_to_message", None)  # one level only
            elif not (
                reply.get("allow_sending_without_reply") or req.get("allow_sending_without_reply")
            ):
                raise ApiError(400, "Bad Request: message to be replied not found")
        if _inline(markup):
            content["reply_markup"] = markup
        if markup and "keyboard" in markup:
            self._reply_keyboards[chat_id] = markup
        elif markup and markup.get("remove_keyboard"):
            self._reply_keyboards.pop(chat_id, None)
        message = self._store_message(chat_id, self.bot_user(), content)
        record.chat_id = chat_id
        record.message_id = message["message_id"]
        record.reply_markup = markup
        record.parse_mode = req.get("parse_mode")
        record.params = req.params
        record.message = copy.deepcopy(message)
        self._record_sent(record)
        return record.message

    def _upload(self, req: Req, key: str) -> tuple[UploadedFile | None, str | None, str]:
        """``(file, reference, file_id)`` for a document/photo parameter."""
        upload = req.file(key)
        self._file_seq += 1
        if upload is not None:
            if not upload.body:
                raise ApiError(400, "Bad Request: file must be non-empty")
            file_id = f"{key}-{self.bot_id}-{self._file_seq}"
            self._files[file_id] = upload
            return upload, None, file_id
        ref = req.get(key)
        if not isinstance(ref, str) or not ref:
            raise ApiError(400, f"Bad Request: there is no {key} in the request")
        if ref in self._files:
            return self._files[ref], ref, ref
        if ref.startswith(("http://", "https://")):
            return None, ref, f"{key}-{self.bot_id}-{self._file_seq}"
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _edit(self, req: Req, changes: JSON, record: SentMessage) -> Any:
        """Apply ``changes`` (None values delete keys) to a stored bot message."""
        if req.get("inline_message_id") is not None:
            record.params = req.params
            self._record_sent(record)
            return True
        chat_id = req.chat_id()
        message = self._stored(chat_id, req.get_int("message_id"), "message to edit not found")
        if message["from"].get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        if all(message.get(key) == value for key, value in changes.items()):
            raise ApiError(400, NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        record.chat_id = chat_id
        record.message_id = message["message_id"]
        record.params = req.params
        record.parse_mode = req.get("parse_mode")
        record.message = copy.deepcopy(message)
        self._record_sent(record)
        return record.message

    # -- messages --------------------------------------------------------------------------

    @api_method("sendMessage", sends=True)
    async def _send_message(self, req: Req) -> JSON:
        raw, plain, entities = self._formatted(req, "text", 4096, required=True)
        content: JSON = {"text": plain}
        if entities:
            content["entities"] = entities
        record = SentMessage("sendMessage", None, text=raw, plain_text=plain, entities=entities)
        return self._send_new(req, content, record)

    @api_method("sendDocument", sends=True)
    async def _send_document(self, req: Req) -> JSON:
        return self._send_file(req, is_photo=False)

    @api_method("sendPhoto", sends=True)
    async def _send_photo(self, req: Req) -> JSON:
        return self._send_file(req, is_photo=True)

    def _send_file(self, req: Req, *, is_photo: bool) -> JSON:
        key = "photo" if is_photo else "document"
        raw, plain, entities = self._formatted(req, "caption", 1024, required=False)
        upload, ref, file_id = self._upload(req, key)
        size = len(upload.body) if upload else 0
        unique = f"u{file_id}"
        content: JSON
        if is_photo:
            sizes = [(90, 90), (320, 320)]
            if upload is not None:
                self._files.update({f"{file_id}-{w}": upload for w, _ in sizes})
            content = {
                "photo": [
                    {
                        "file_id": f"{file_id}-{w}",
                        "file_unique_id": f"{unique}-{w}",
                        "width": w,
                        "height": h,
                        "file_size": size,
                    }
                    for w, h in sizes
                ]
            }
        else:
            document: JSON = {"file_id": file_id, "file_unique_id": unique, "file_size": size}
            if upload and upload.filename:
                document["file_name"] = upload.filename
            if upload and upload.content_type:
                document["mime_type"] = upload.content_type
            content = {"document": document}
        if plain is not None:
            content["caption"] = plain
        if entities:
            content["caption_entities"] = entities
        record = SentMessage(
            "sendPhoto" if is_photo else "sendDocument",
            None,
            caption=raw,
            plain_text=plain,
            entities=entities,
            document=upload.body if upload else None,
            filename=upload.filename if upload else None,
            mime_type=upload.content_type if upload else None,
            file_ref=ref,
        )
        return self._send_new(req, content, record)

    @api_method("editMessageText", sends=True)
    async def _edit_message_text(self, req: Req) -> Any:
        raw, plain, entities = self._formatted(req, "text", 4096, required=True)
        markup = _check_edit_markup(req.get("reply_markup"))
        record = SentMessage("editMessageText", None, text=raw, plain_text=plain)
        record.entities, record.reply_markup = entities, markup
        if req.get("inline_message_id") is None:
            chat_id, message_id = req.chat_id(), req.get_int("message_id")
            stored = self._stored(chat_id, message_id, "message to edit not found")
            if "text" not in stored:
                raise ApiError(400, "Bad Request: there is no text in the message to edit")
        changes = {"text": plain, "entities": entities, "reply_markup": _inline(markup)}
        return self._edit(req, changes, record)

    @api_method("editMessageCaption", sends=True)
    async def _edit_message_caption(self, req: Req) -> Any:
        raw, plain, entities = self._formatted(req, "caption", 1024, required=False)
        markup = _check_edit_markup(req.get("reply_markup"))
        record = SentMessage("editMessageCaption", None, caption=raw, plain_text=plain)
        record.entities, record.reply_markup = entities, markup
        changes = {"caption": plain, "caption_entities": entities, "reply_markup": _inline(markup)}
        return self._edit(req, changes, record)

    @api_method("editMessageReplyMarkup", sends=True)
    async def _edit_message_reply_markup(self, req: Req) -> Any:
        markup = _check_edit_markup(req.get("reply_markup"))
        record = SentMessage("editMessageReplyMarkup", None, reply_markup=markup)
        return self._edit(req, {"reply_markup": _inline(markup)}, record)

    @api_method("deleteMessage")
    async def _delete_message(self, req: Req) -> bool:
        chat_id, message_id = req.chat_id(), req.get_int("message_id")
        self._stored(chat_id, message_id, "message to delete not found")
        del self._messages[chat_id][message_id]
        self.deleted.append((chat_id, message_id))
        return True

    @api_method("sendChatAction", to_chat=True)
    async def _send_chat_action(self, req: Req) -> bool:
        req.chat_id()
        if req.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    @api_method("answerCallbackQuery")
    async def _answer_callback_query(self, req: Req) -> bool:
        query_id = str(req.get("callback_query_id", ""))
        if query_id not in self._open_callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is "
                "invalid",
            )
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(dict(req.params))
        return True
