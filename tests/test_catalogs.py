"""The catalogs are product: complete, not fuzzy, placeholders and markup consistent."""

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, I18n

LOCALES = Path(__file__).resolve().parents[1] / "locales"
TAG = re.compile(r"</?[a-z-]+")


def braces(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


@pytest.fixture(scope="module")
def pot_ids() -> set[str]:
    return {m.id for m in read(LOCALES / "messages.pot") if m.id}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_matches_template(lang, pot_ids):
    catalog = read(LOCALES / lang / "LC_MESSAGES" / "messages.po")
    ids = {m.id for m in catalog if m.id}
    assert ids == pot_ids, "msgids differ from messages.pot: run pybabel update"


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_catalog_complete_and_consistent(lang):
    catalog = read(LOCALES / lang / "LC_MESSAGES" / "messages.po")
    problems = []
    for m in catalog:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strs = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if not all(strs):
            problems.append(f"untranslated: {ids[0]!r}")
            continue
        for s in strs:
            if braces(s) != braces(ids[0]):
                problems.append(f"placeholders differ: {ids[0]!r} -> {s!r}")
            if sorted(TAG.findall(s)) != sorted(TAG.findall(ids[0])):
                problems.append(f"HTML tags differ: {ids[0]!r} -> {s!r}")
            if s.count("/") < ids[0].count("/") and "/" in ids[0]:
                commands = set(re.findall(r"/[a-z]+", ids[0]))
                if not commands <= set(re.findall(r"/[a-z]+", s)):
                    problems.append(f"commands differ: {ids[0]!r} -> {s!r}")
        problems += [f"{ids[0]!r}: {error}" for error in m.check(catalog)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalog_is_current(lang):
    """The committed .mo holds exactly the translations of the .po (run pybabel compile)."""
    folder = LOCALES / lang / "LC_MESSAGES"

    def key(value: object) -> object:  # plural ids and strings come as lists from read_mo
        return tuple(value) if isinstance(value, list) else value

    po = {key(m.id): key(m.string) for m in read(folder / "messages.po") if m.id and any(m.string)}
    with (folder / "messages.mo").open("rb") as f:
        mo = {key(m.id): key(m.string) for m in read_mo(f) if m.id and any(m.string)}
    assert {k: mo.get(k) for k in po} == po
    # Compiling fills untranslated English plurals with the msgid itself; anything else is stale.
    assert {k: v for k, v in mo.items() if k not in po and v != k} == {}


def test_every_language_loads():
    i18n = I18n()
    assert {i18n(lang).lang for lang in LANGUAGES} == set(LANGUAGES)
    assert i18n("fr")._("Register") != "Register"
    assert i18n("es")._("Register") != "Register"


def _literal_calls(tree: ast.AST) -> set[str]:
    """Literal msgids of `_()`, `t._()`, `N_()` and `n_()` calls (f-strings included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0]
        if name in ("_", "N_", "n_") and isinstance(first, ast.Constant):
            found.add(str(first.value))
    return found


def test_template_holds_every_message_in_the_code(pot_ids):
    """A message the extractor cannot see (e.g. a call inside an f-string) is never translated."""
    in_code: set[str] = set()
    for path in (LOCALES.parent / "bot").rglob("*.py"):
        in_code |= _literal_calls(ast.parse(path.read_text(encoding="utf-8")))
    singulars = {m[0] if isinstance(m, tuple) else m for m in pot_ids}
    missing = sorted(in_code - singulars)
    assert not missing, f"run pybabel extract/update (see README): {missing}"
