"""Who a user is to the bot: their language, time zone and where they came from."""

from __future__ import annotations

import re

from bot.i18n import LANGUAGES, negotiate
from bot.storage import User, UserRepo

SOURCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class UserService:
    def __init__(self, repo: UserRepo) -> None:
        self.repo = repo
        self._languages: dict[int, str] = {}

    async def language(self, user_id: int, language_code: str | None = None) -> str:
        """The user's chosen language, else the one their Telegram app suggests."""
        cached = self._languages.get(user_id)
        if cached is not None:
            return cached
        user = await self.repo.get(user_id)
        lang = user.language if user else negotiate(language_code)
        self._languages[user_id] = lang
        return lang

    async def start(self, user_id: int, language_code: str | None, source: str | None) -> str:
        """Record a user who sent /start; returns their language."""
        lang = await self.language(user_id, language_code)
        clean_source = source if source and SOURCE_RE.match(source) else None
        await self.repo.ensure(user_id, lang, clean_source)
        return lang

    async def set_language(self, user_id: int, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(lang)
        await self.repo.ensure(user_id, lang)
        await self.repo.set_language(user_id, lang)
        self._languages[user_id] = lang

    async def get(self, user_id: int) -> User | None:
        return await self.repo.get(user_id)

    async def set_timezone(self, user_id: int, zone: str | None, place: str | None = None) -> None:
        """Store the zone; `place` is the city typed when the zone is known by another one."""
        await self.repo.set_timezone(user_id, zone, place)

    async def forget(self, user_id: int) -> None:
        await self.repo.delete(user_id)
        self._languages.pop(user_id, None)
