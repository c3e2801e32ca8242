"""Tests for bot.countries: codes, names and forgiving matching."""

from __future__ import annotations

import difflib

import pytest

from bot.countries import (
    SUPPORTED,
    CountryMatch,
    _index,
    _key,
    codes_by_name,
    country_codes,
    country_name,
    exact_country_codes,
    is_country,
    match_country,
    preload,
)


def confident(text: str, lang: str = "en") -> str | None:
    result = match_country(text, lang)
    assert result.code is None or result.suggestions == (), result
    return result.code


def suggested(text: str, lang: str = "en") -> tuple[str, ...]:
    result = match_country(text, lang)
    assert result.code is None, result
    return result.suggestions


# ------------------------------------------------------------------------- codes and names


def test_supported_languages():
    assert SUPPORTED == ("en", "fr", "es")


def test_country_codes_are_iso_alpha2_only():
    codes = country_codes()
    assert len(codes) == len(set(codes)) >= 249
    assert list(codes) == sorted(codes)
    assert all(len(code) == 2 and code.isalpha() and code.isupper() for code in codes)
    for region in ("001", "002", "150", "419", "EU", "EZ", "UN", "ZZ", "QO", "AC", "IC"):
        assert region not in codes
        assert not is_country(region)
    for code in ("SN", "CI", "CD", "CG", "XK", "FR", "US", "GB", "MA"):
        assert code in codes
        assert is_country(code)


def test_country_codes_is_cached():
    assert country_codes() is country_codes()


def test_is_country_is_strict():
    assert is_country("DE")
    assert not is_country("de")
    assert not is_country("")
    assert not is_country("DEU")


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_country_has_a_name(lang):
    for code in country_codes():
        name = country_name(code, lang)
        assert name, code
        assert name == name.strip() != code, code


def test_country_names():
    assert country_name("DE", "en") == "Germany"
    assert country_name("DE", "fr") == "Allemagne"
    assert country_name("DE", "es") == "Alemania"
    assert country_name("CI", "fr") == "Côte d\u2019Ivoire"
    assert country_name("SN", "fr") == "Sénégal"
    assert country_name("XK", "es") == "Kosovo"


def test_country_name_language_fallbacks():
    assert country_name("DE", "fr-CA") == "Allemagne"
    assert country_name("DE", "es_MX") == "Alemania"
    assert country_name("DE", "de") == "Germany"
    assert country_name("de", "en") == "Germany"
    assert country_name("ZZ", "en") == "ZZ"


def test_codes_by_name_ignores_accents():
    for lang in SUPPORTED:
        assert sorted(codes_by_name(lang)) == sorted(country_codes())
    fr = codes_by_name("fr")
    # "Égypte" sorts among the E's, not after "Z".
    assert fr.index("EG") < fr.index("EE") < fr.index("ZM")
    es = codes_by_name("es")
    assert es.index("AF") < es.index("AL") < es.index("DE")  # Afganistán, Albania, Alemania


# ------------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("cote d'ivoire", "en"),
        ("Côte d\u2019Ivoire", "fr"),
        ("COTE DIVOIRE", "es"),
        ("Cote-d-Ivoire", "en"),
        ("  côte   d'ivoire  ", "fr"),
        ("Ivory Coast", "fr"),
        ("Costa de Marfil", "es"),
    ],
)
def test_cote_divoire(text, lang):
    assert confident(text, lang) == "CI"


@pytest.mark.parametrize("text", ["Allemagne", "Alemania", "Germany", "germany", "GERMANY"])
@pytest.mark.parametrize("lang", SUPPORTED)
def test_any_language_name(text, lang):
    assert confident(text, lang) == "DE"


@pytest.mark.parametrize(
    ("text", "code"),
    [("DE", "DE"), ("deu", "DE"), ("DEU", "DE"), ("MAR", "MA"), ("mar", "MA"), ("SN", "SN"),
     ("SEN", "SN"), ("CIV", "CI"), ("XK", "XK"), ("GB", "GB"), ("GBR", "GB")],
)  # fmt: skip
def test_iso_codes(text, code):
    assert confident(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("USA", "US"),
        ("US", "US"),
        ("us", "US"),
        ("U.S.A.", "US"),
        ("UK", "GB"),
        ("uk", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Holland", "NL"),
        ("the Netherlands", "NL"),
        ("Pays-Bas", "NL"),
        ("Ivory Coast", "CI"),
        ("Maroc", "MA"),
        ("Marruecos", "MA"),
        ("Tunisie", "TN"),
        ("Suède", "SE"),
        ("Suede", "SE"),
        ("Suecia", "SE"),
        ("EEUU", "US"),
        ("EE. UU.", "US"),
        ("Estados Unidos", "US"),
        ("Etats-Unis", "US"),
        ("États-Unis", "US"),
        ("RDC", "CD"),
        ("RD Congo", "CD"),
        ("DRC", "CD"),
        ("République démocratique du Congo", "CD"),
        ("Congo-Kinshasa", "CD"),
        ("Congo Brazzaville", "CG"),
        ("South Korea", "KR"),
        ("Corée du Sud", "KR"),
        ("Corea del Norte", "KP"),
        ("Turkey", "TR"),
        ("Türkiye", "TR"),
        ("Czech Republic", "CZ"),
        ("Swaziland", "SZ"),
        ("Burma", "MM"),
        ("Myanmar", "MM"),
        ("Hong Kong", "HK"),
        ("UAE", "AE"),
        ("El Salvador", "SV"),
        ("Salvador", "SV"),
        ("St Lucia", "LC"),
        ("Saint Lucia", "LC"),
        ("Sainte-Lucie", "LC"),
        ("Trinidad and Tobago", "TT"),
        ("Trinidad & Tobago", "TT"),
        ("Trinidad y Tobago", "TT"),
        ("Bosnia and Herzegovina", "BA"),
        ("Guinea", "GN"),
        ("Guinée", "GN"),
        ("Guinea-Bissau", "GW"),
        ("Guinea Bissau", "GW"),
        ("Niger", "NE"),
        ("Nigeria", "NG"),
        ("Sénégal", "SN"),
        ("senegal", "SN"),
        ("Kosovo", "XK"),
        ("Viet Nam", "VN"),
        ("Deutschland", "DE"),
        ("España", "ES"),
        ("Espana", "ES"),
        ("Brasil", "BR"),
        ("Moçambique", "MZ"),
        ("Perú", "PE"),
        ("Pérou", "PE"),
        ("Mexique", "MX"),
        ("México", "MX"),
        ("Cabo Verde", "CV"),
        ("Cape Verde", "CV"),
        ("Cap-Vert", "CV"),
        ("Burkina-Faso", "BF"),
        ("Camerun", "CM"),
    ],
)
def test_names_and_aliases(text, code):
    assert confident(text) == code


def test_flag_emoji():
    assert confident("🇸🇳") == "SN"
    assert confident(" 🇨🇮 ", "fr") == "CI"
    assert match_country("🇪🇺", "en") == CountryMatch(None, ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Congo", ("CD", "CG")), ("congo", ("CD", "CG")), ("Korea", ("KR", "KP")),
     ("Corée", ("KR", "KP")), ("Corea", ("KR", "KP"))],
)  # fmt: skip
@pytest.mark.parametrize("lang", SUPPORTED)
def test_ambiguous_names_give_suggestions(text, expected, lang):
    # "Congo" alone is the Spanish name of CG, but people mean either.
    assert suggested(text, lang) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [("Switz", "CH"), ("Moroc", "MA"), ("Alem", "DE"), ("Argent", "AR"), ("Burkina", "BF"),
     ("Trinidad", "TT"), ("Bosnia", "BA"), ("Papua", "PG"), ("Sao Tome", "ST")],
)  # fmt: skip
def test_unique_prefix_of_four_letters_is_confident(text, code):
    assert confident(text) == code


def test_short_or_shared_prefixes_give_suggestions():
    ma = suggested("Ma")
    assert ma[0] == "MA"  # also Morocco's code, typed in mixed case
    assert 1 < len(ma) <= 5
    assert set(ma) <= {code for code in country_codes() if code.startswith("M") or code == "YT"}
    assert suggested("Swi") == ("CH",)
    assert set(suggested("Nige")) == {"NE", "NG"}


def test_lower_case_alpha2_is_a_suggestion():
    assert suggested("de")[0] == "DE"
    assert suggested("De", "es")[0] == "DE"
    assert suggested("sn")[0] == "SN"


@pytest.mark.parametrize(
    ("text", "lang", "code"),
    [
        ("Marocco", "en", "MA"),
        ("Morroco", "en", "MA"),
        ("Tunesia", "en", "TN"),
        ("Argentinia", "es", "AR"),
        ("Colmbia", "es", "CO"),
        ("Senegall", "fr", "SN"),
        ("Philipines", "en", "PH"),
        ("Untied States", "en", "US"),
        ("Alemagne", "fr", "DE"),
        ("Camroon", "fr", "CM"),
        ("Méjico", "es", "MX"),
    ],
)
def test_misspellings_are_suggestions_only(text, lang, code):
    suggestions = suggested(text, lang)
    assert suggestions[0] == code
    assert len(suggestions) <= 5


@pytest.mark.parametrize(
    "text", ["", " ", "   ", "!!!", "?", "x", "xx", "123", "asdfgh", "qwertyuiop", "hello world",
             "lorem ipsum dolor", "x" * 500, "🙂"]
)  # fmt: skip
def test_garbage(text):
    assert match_country(text, "en") == CountryMatch(None, ())


def test_suggestions_prefer_the_users_language():
    # "Salvador" is the French name of El Salvador; no confusion in any language.
    assert confident("Salvador", "fr") == "SV"
    # A prefix shared by names in several languages: names in the user's language first.
    assert suggested("Rep", "fr")[0] == "DO"  # République dominicaine
    assert suggested("Rep", "es")[0] in {"CG", "CF", "DO", "CD", "CZ"}  # República ...
    assert suggested("Sai", "fr")[0] == "SM"  # Saint-Marin


def test_unknown_language_falls_back_to_english():
    assert confident("Germany", "de") == "DE"
    assert confident("Alemania", "") == "DE"


def test_exact_country_codes():
    assert exact_country_codes("Sénégal") == ("SN",)
    assert exact_country_codes("Deutschland") == ("DE",)
    assert exact_country_codes("Congo") == ("CD", "CG")
    assert exact_country_codes("EST") == ()  # codes are not names
    assert exact_country_codes("Switz") == ()  # nor are prefixes
    assert exact_country_codes("") == ()


# ----------------------------------------------------------------------------- internals


def test_normalized_keys():
    assert _key("Côte d\u2019Ivoire") == _key("COTE DIVOIRE") == "cotedivoire"
    assert _key("St. Kitts & Nevis") == _key("Saint Kitts and Nevis")
    assert _key("La Réunion") == _key("Réunion") == "reunion"
    assert _key("Curaçao") == "curacao"
    assert _key("Åland Islands") == "alandislands"


def test_index_has_no_unintended_ambiguity():
    index = _index()
    ambiguous = {key for key, codes in index.exact.items() if len(codes) > 1}
    assert ambiguous - index.fixed_order == {"saintmartin"}  # MF and the Dutch side, SX


def test_fuzzy_prefilter_agrees_with_difflib():
    index = _index()
    keys = list(index.entries)
    for word in ["marocco", "tunesia", "argentinia", "colmbia", "untiedstates", "senegl", "ab"]:
        expected = set(difflib.get_close_matches(word, keys, n=len(keys), cutoff=0.75))
        assert {key for _, key in index.fuzzy.close(word, 0.75)} == expected


def test_preload():
    preload()
    assert match_country("Deutschland", "en").code == "DE"
