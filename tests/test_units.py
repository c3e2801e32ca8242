"""Pure logic: settings, input cleaning, typed choices, language negotiation."""

import pytest

from bot.config import ConfigError, settings_from
from bot.i18n import negotiate
from bot.services.choices import AFFILIATIONS, SESSION_LANGUAGES, match_choice
from bot.services.validation import clean_text, fold, normalise_email

TOKEN = "123456:TEST-token_abc"


def test_settings_defaults():
    s = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert s.admin_ids == frozenset()
    assert s.database_path.name == "bot.sqlite3"
    assert s.event_file.name == "event.toml"
    assert not s.webhook
    assert s.update_concurrency == 4


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "ADMIN_IDS": "12,abc"}, "ADMIN_IDS"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_PORT": "http"}, "WEBHOOK_PORT"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_URL": "example.org"}, "WEBHOOK_URL"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_SECRET": "a b"}, "WEBHOOK_SECRET"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "UPDATE_CONCURRENCY": "0"}, "UPDATE_CONCURRENCY"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "UPDATE_CONCURRENCY": "many"}, "UPDATE_CONCURRENCY"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "UPDATE_CONCURRENCY": "101"}, "UPDATE_CONCURRENCY"),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": "ftp://x"},
            "TELEGRAM_API_BASE_URL",
        ),
    ],
)
def test_settings_errors_name_the_variable(env, named):
    with pytest.raises(ConfigError) as info:
        settings_from(env)
    assert str(info.value).startswith(named)
    assert "\n" not in str(info.value)


def test_malformed_token_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        settings_from({"TELEGRAM_BOT_TOKEN": "123:secret value"})
    assert "secret" not in str(info.value)


def test_admin_ids_parsed():
    s = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "ADMIN_IDS": " 1, 22 ,333 "})
    assert s.admin_ids == {1, 22, 333}


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("es", "es"),
        ("es-419", "es"),
        ("en-GB", "en"),
        ("de", "en"),
        (None, "en"),
        ("", "en"),
        ("pt-br", "en"),
    ],
)
def test_negotiate(code, lang):
    assert negotiate(code) == lang


def test_clean_text_strips_controls_keeps_scripts_and_emoji():
    assert clean_text("  Ana\x00 María\u0007  \n López 🙂 ") == "Ana María López 🙂"
    assert clean_text("محمد علي") == "محمد علي"
    assert clean_text("张伟") == "张伟"
    assert clean_text("\x1b[31m") == "[31m"
    # French typography survives; runs of spaces of any kind become one space.
    assert clean_text("Et les migrants\u202f? «\u00a0oui\u00a0»") == (
        "Et les migrants\u202f? «\u00a0oui\u00a0»"
    )
    assert clean_text("a \u00a0 b\u202f\u202fc\u00a0") == "a b c"


def test_email_validation():
    assert normalise_email(" Ana.Lopez@Example.ORG ") == "Ana.Lopez@example.org"
    assert normalise_email("ana@") is None
    assert normalise_email("not an email") is None
    assert normalise_email("a@b") is None


def test_fold():
    assert fold("  Français (interprétation) ") == "francais interpretation"


LABELS = [[label for _, label in AFFILIATIONS]]


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("1", "pes"),
        ("9", "other"),
        (" public employment service ", "pes"),
        ("Jobseeker", "jobseeker"),
        ("10", None),
        ("0", None),
        ("banana", None),
        ("", None),
        ("Other", "other"),
    ],
)
def test_match_choice(typed, key):
    assert match_choice(typed, AFFILIATIONS, LABELS) == key


def test_match_choice_any_language():
    labels = [
        ["English", "French (interpretation)", "Spanish (interpretation)"],
        ["Anglais", "Français (interprétation)", "Espagnol (interprétation)"],
    ]
    assert match_choice("francais", SESSION_LANGUAGES, labels) == "fr"
    assert match_choice("Espagnol (interprétation)", SESSION_LANGUAGES, labels) == "es"
