"""Small helpers around python-telegram-bot's errors."""

from __future__ import annotations

import warnings
from datetime import timedelta

from telegram.error import RetryAfter


def retry_after_seconds(exc: RetryAfter) -> float:
    """`retry_after` in seconds, whichever type PTB returns (int is deprecated since 22.2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
