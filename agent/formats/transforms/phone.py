"""Phone numbers to E.164: a country table and the rules that read national, international and IDD forms."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple


class _Country(NamedTuple):
    """Dialling facts for one country; only what reading a national number needs."""

    cc: str  # calling code, no "+"
    trunk: str | None  # national trunk prefix ("0", "8", "06"); "keep" = leading 0 is part of the number (IT)
    lengths: tuple[int, ...]  # national significant number lengths that are commonly written bare (>= 9 only)
    idd: str  # international dialling prefix besides the universal "00"


def _c(cc: str, trunk: str | None = "0", lengths: tuple[int, ...] = (), idd: str = "00") -> _Country:
    return _Country(cc, trunk, lengths, idd)


# ISO 3166 alpha-2 -> dialling facts. `lengths` is deliberately conservative: a bare number of exactly that length
# (not starting with the calling code) is read as national, e.g. US "2025550143" -> "+12025550143".
_COUNTRIES: dict[str, _Country] = {
    # North America (NANP): trunk "1" is covered by the calling-code rule
    "US": _c("1", None, (10,), "011"),
    "CA": _c("1", None, (10,), "011"),
    "PR": _c("1", None, (10,), "011"),
    # Europe
    "GB": _c("44", "0", (10,)),
    "IE": _c("353", "0", (9,)),
    "FR": _c("33", "0", (9,)),
    "DE": _c("49"),
    "AT": _c("43"),
    "CH": _c("41", "0", (9,)),
    "NL": _c("31", "0", (9,)),
    "BE": _c("32", "0", (9,)),
    "LU": _c("352", None),
    "ES": _c("34", None, (9,)),
    "PT": _c("351", None, (9,)),
    "IT": _c("39", "keep", (9, 10)),
    "SM": _c("378", "keep"),
    "VA": _c("39", "keep", (9, 10)),
    "MT": _c("356", None),
    "GR": _c("30", None, (10,)),
    "CY": _c("357", None),
    "SE": _c("46"),
    "NO": _c("47", None),
    "DK": _c("45", None),
    "FI": _c("358"),
    "IS": _c("354", None),
    "EE": _c("372", None),
    "LV": _c("371", None),
    "PL": _c("48", None, (9,)),
    "CZ": _c("420", None, (9,)),
    "SK": _c("421", "0", (9,)),
    "HU": _c("36", "06", (9,)),
    "RO": _c("40", "0", (9,)),
    "BG": _c("359"),
    "HR": _c("385"),
    "SI": _c("386"),
    "RS": _c("381"),
    "UA": _c("380", "0", (9,)),
    "BY": _c("375", "8", (9,), "810"),
    "RU": _c("7", "8", (10,), "810"),
    "KZ": _c("7", "8", (10,), "810"),
    "TR": _c("90", "0", (10,)),
    # Middle East / Africa
    "IL": _c("972", "0", (9,)),
    "AE": _c("971", "0", (9,)),
    "SA": _c("966", "0", (9,)),
    "QA": _c("974", None),
    "KW": _c("965", None),
    "BH": _c("973", None),
    "OM": _c("968", None),
    "JO": _c("962", "0", (9,)),
    "LB": _c("961"),
    "IQ": _c("964", "0", (10,)),
    "IR": _c("98", "0", (10,)),
    "EG": _c("20", "0", (10,)),
    "MA": _c("212", "0", (9,)),
    "DZ": _c("213", "0", (9,)),
    "TN": _c("216", None),
    "NG": _c("234", "0", (10,)),
    "GH": _c("233", "0", (9,)),
    "KE": _c("254", "0", (9,)),
    "TZ": _c("255", "0", (9,)),
    "UG": _c("256", "0", (9,)),
    "ET": _c("251", "0", (9,)),
    "ZA": _c("27", "0", (9,)),
    "CM": _c("237", None, (9,)),
    "SN": _c("221", None, (9,)),
    "CI": _c("225", "keep", (10,)),
    # Asia / Pacific
    "IN": _c("91", "0", (10,)),
    "PK": _c("92", "0", (10,)),
    "BD": _c("880", "0", (10,)),
    "LK": _c("94", "0", (9,)),
    "NP": _c("977"),
    "CN": _c("86", "0", (11,)),
    "HK": _c("852", None),
    "MO": _c("853", None),
    "TW": _c("886", "0", (9,)),
    "JP": _c("81", "0", (10,), "010"),
    "KR": _c("82"),
    "SG": _c("65", None),
    "MY": _c("60", "0", (9, 10)),
    "TH": _c("66", "0", (9,)),
    "VN": _c("84", "0", (9,)),
    "ID": _c("62"),
    "PH": _c("63", "0", (10,)),
    "AU": _c("61", "0", (9,), "0011"),
    "NZ": _c("64"),
    # Latin America
    "BR": _c("55", "0", (10, 11)),
    "MX": _c("52", None, (10,)),
    "AR": _c("54", "0", (10,)),
    "CL": _c("56", None, (9,)),
    "CO": _c("57", None, (10,)),
    "PE": _c("51", "0", (9,)),
    "VE": _c("58", "0", (10,)),
}

#: ISO 3166 alpha-2 -> calling code (no "+"), for callers that only need the code.
COUNTRY_CALLING_CODES: dict[str, str] = {iso: c.cc for iso, c in _COUNTRIES.items()}

# Formatting characters removed inside numeric numbers ("+1 (202) 555-0143").
_NUMBER_SEPARATORS = str.maketrans("", "", " -.()/\t\u00a0\u2009\u202f")
_MIN_NATIONAL = 6  # a national / international remainder shorter than this is not a phone number


def to_e164(number: str | int | None, default_country: str | None = None) -> str | None:
    """Normalise a phone number to E.164 where that can be done without guessing.

    Rules, in order (``digits`` = the number without spaces, dashes, dots, parentheses and a "(0)"):

    * empty / None, or only "+" and separators -> None.
    * not all digits (alphanumeric sender "Uber-Eats", "ACMEBANK") -> returned as given.
    * "+digits" -> "+digits".  "00" + at least 6 digits (not "000…") -> "+" + rest.
    * with ``default_country`` (ISO 3166 alpha-2, any case; unknown codes are ignored):
      its own international prefix (US "011", AU "0011", JP "010", RU "810") -> "+" + rest;
      its trunk prefix ("0"; RU/KZ/BY "8"; HU "06") -> "+" + calling code + rest ("07700900415" GB ->
      "+447700900415"); Italy-like countries keep the 0 ("0612345678" IT -> "+390612345678");
      a bare number of a common national length -> "+" + code + number (US/CA "2025550143" -> "+12025550143",
      CN "13812345678", IN "9876543210"), or as international when it already starts with the code.
    * <= 8 digits, no leading 0 -> a short code, returned as given.
    * a leading single "0" without a usable default_country -> national, returned as given (not invented).
    * >= 11 digits not starting with 0 -> bare international, "+" prepended ("447700900123").
    * anything else (9-10 bare digits with no country rule) -> returned as given.

    "As given" means the input with surrounding whitespace removed. Never returns "".
    """
    if number is None:
        return None
    if not isinstance(number, str):
        if isinstance(number, bool) or not isinstance(number, int):
            return None
        number = str(number)
    country = default_country.upper() if isinstance(default_country, str) and default_country else None
    return _to_e164(number, country)


@lru_cache(maxsize=16384)
def _to_e164(number: str, country_code: str | None) -> str | None:
    given = number.strip()
    if not given:
        return None
    plus = given[0] == "+"
    body = given[1:] if plus else given
    if plus and "(0)" in body:  # "+44 (0)7700 900415": the (0) is the national trunk, not part of E.164
        body = body.replace("(0)", "")
    digits = body.translate(_NUMBER_SEPARATORS)
    if not digits:
        return None  # only "+" and separators: not a number, not a sender name
    if not (digits.isascii() and digits.isdigit()):
        return given  # alphanumeric sender, or not a number at all
    if plus:
        return "+" + digits
    n = len(digits)
    country = _COUNTRIES.get(country_code) if country_code else None
    if country is not None and country.idd != "00" and digits.startswith(country.idd):
        rest = digits[len(country.idd) :]  # before the generic "00": AU "0011…"
        if len(rest) >= _MIN_NATIONAL and rest[0] != "0":
            return "+" + rest
    if digits.startswith("00") and n - 2 >= _MIN_NATIONAL and digits[2] != "0":
        return "+" + digits[2:]
    if country is not None:
        converted = _national_to_e164(digits, country)
        if converted is not None:
            return converted
    if n <= 8 and digits[0] != "0":
        return given  # short code
    if digits[0] == "0":
        return given  # national number, country unknown: leave as written
    if n >= 11:
        return "+" + digits
    return given


# The per-line fast path for a str number and an upper-case country (what the config guarantees): the cached
# core itself, without to_e164's type checks.
e164_str = _to_e164


def _national_to_e164(digits: str, c: _Country) -> str | None:
    """Apply the country-specific rules of :func:`to_e164`; None when none applies."""
    n = len(digits)
    trunk = c.trunk
    if trunk == "keep":
        if digits[0] == "0" and n - 1 >= _MIN_NATIONAL:
            return "+" + c.cc + digits
    elif trunk is not None and digits.startswith(trunk):
        rest = digits[len(trunk) :]
        if len(rest) >= _MIN_NATIONAL and rest[0] != "0" and (trunk == "0" or len(rest) in c.lengths):
            return "+" + c.cc + rest
    elif trunk is None and digits[0] == "0" and n - 1 >= _MIN_NATIONAL and not digits.startswith("00"):
        # no trunk prefix in this country, but someone wrote one anyway
        return "+" + c.cc + digits[1:]
    if c.lengths and digits[0] != "0":
        if digits.startswith(c.cc) and n - len(c.cc) in c.lengths:
            return "+" + digits
        if n in c.lengths:
            return "+" + c.cc + digits
    return None
