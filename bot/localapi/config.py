"""Bot API methods about the bot itself: getMe, commands, descriptions, menu button."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .chats import ChatStore
from .state import JSON, ApiError, Req, api_method

_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE = re.compile(r"[a-z]{2}")


def _scope_key(scope: Any, language_code: str | None) -> tuple[str, str]:
    if scope is not None and hasattr(scope, "to_dict"):
        scope = scope.to_dict()
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


class BotConfig(ChatStore):
    """Mixin: the bot's profile and settings as set through the API."""

    descriptions: dict[str, str]
    short_descriptions: dict[str, str]
    menu_buttons: dict[int | None, JSON]

    def _init_config(self) -> None:
        self.descriptions = {}
        self.short_descriptions = {}
        self.menu_buttons = {}
        self._commands: dict[tuple[str, str], list[JSON]] = {}

    def commands(self, scope: Any = None, language_code: str | None = None) -> list[JSON]:
        """Commands set for ``scope`` (dict or PTB BotCommandScope) and ``language_code``."""
        return copy.deepcopy(self._commands.get(_scope_key(scope, language_code), []))

    # -- identity --------------------------------------------------------------------------

    @api_method("getMe")
    async def _get_me(self, req: Req) -> JSON:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @api_method("logOut", "close")
    async def _log_out(self, req: Req) -> bool:
        return True

    @api_method("getChat")
    async def _get_chat(self, req: Req) -> JSON:
        gifts = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription")
        return {
            **self.chat_object(req.chat_id()),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys((*gifts, "gifts_from_channels"), False),
        }

    # -- configuration ---------------------------------------------------------------------

    @staticmethod
    def _language(req: Req) -> str:
        language = req.get("language_code") or ""
        if language and not _LANGUAGE.fullmatch(language):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return str(language)

    @api_method("setMyCommands")
    async def _set_my_commands(self, req: Req) -> bool:
        commands = req.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        clean: list[JSON] = []
        for item in commands:
            if not isinstance(item, dict) or not _COMMAND.fullmatch(str(item.get("command"))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            description = str(item.get("description") or "").strip()
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": item["command"], "description": description})
        key = _scope_key(req.get("scope"), self._language(req))
        if clean:
            self._commands[key] = clean
        else:
            self._commands.pop(key, None)
        return True

    @api_method("getMyCommands")
    async def _get_my_commands(self, req: Req) -> list[JSON]:
        return self.commands(req.get("scope"), self._language(req))

    @api_method("deleteMyCommands")
    async def _delete_my_commands(self, req: Req) -> bool:
        self._commands.pop(_scope_key(req.get("scope"), self._language(req)), None)
        return True

    @api_method("setMyDescription")
    async def _set_my_description(self, req: Req) -> bool:
        return self._set_text(req, self.descriptions, "description", 512)

    @api_method("setMyShortDescription")
    async def _set_my_short_description(self, req: Req) -> bool:
        return self._set_text(req, self.short_descriptions, "short_description", 120)

    def _set_text(self, req: Req, store: dict[str, str], key: str, limit: int) -> bool:
        value = str(req.get(key) or "")
        if len(value) > limit:
            raise ApiError(400, f"Bad Request: {key} is too long")
        language = self._language(req)
        if value:
            store[language] = value
        else:
            store.pop(language, None)
        return True

    @api_method("getMyDescription")
    async def _get_my_description(self, req: Req) -> JSON:
        return {"description": self.descriptions.get(self._language(req), "")}

    @api_method("getMyShortDescription")
    async def _get_my_short_description(self, req: Req) -> JSON:
        return {"short_description": self.short_descriptions.get(self._language(req), "")}

    @api_method("setChatMenuButton")
    async def _set_chat_menu_button(self, req: Req) -> bool:
        chat_id = req.chat_id() if req.get("chat_id") is not None else None
        button = req.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or "type" not in button:
            raise ApiError(400, "Bad Request: can't parse menu button JSON object")
        self.menu_buttons[chat_id] = button
        return True

    @api_method("getChatMenuButton")
    async def _get_chat_menu_button(self, req: Req) -> JSON:
        chat_id = req.chat_id() if req.get("chat_id") is not None else None
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None)
        if not button or button.get("type") == "default":
            return {"type": "commands"}
        return copy.deepcopy(button)
