"""Countries and regions: which places a shopper names ("do you ship to Canada?") and whether a
shipping method's regions (as the shop's data writes them: country names, ISO codes, "EU",
"Worldwide") include them.

The shop's own data never lists every country, so knowing that "Canada" is a country (and that
the shop does not list it) needs a list of its own: the English short names of the world's
countries, their two-letter ISO codes and the usual other names, and a few groups shops write in
region lists. Nothing here is about one shop.
"""

from __future__ import annotations

import re
from functools import lru_cache

# (name, ISO 3166-1 alpha-2, other names)
COUNTRIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Afghanistan", "AF", ()), ("Albania", "AL", ()), ("Algeria", "DZ", ()), ("Andorra", "AD", ()),
    ("Angola", "AO", ()), ("Argentina", "AR", ()), ("Armenia", "AM", ()), ("Australia", "AU", ()),
    ("Austria", "AT", ()), ("Azerbaijan", "AZ", ()), ("Bahamas", "BS", ()), ("Bahrain", "BH", ()),
    ("Bangladesh", "BD", ()), ("Barbados", "BB", ()), ("Belarus", "BY", ()), ("Belgium", "BE", ()),
    ("Belize", "BZ", ()), ("Benin", "BJ", ()), ("Bhutan", "BT", ()), ("Bolivia", "BO", ()),
    ("Bosnia and Herzegovina", "BA", ("bosnia",)), ("Botswana", "BW", ()), ("Brazil", "BR", ()),
    ("Brunei", "BN", ()), ("Bulgaria", "BG", ()), ("Burkina Faso", "BF", ()), ("Burundi", "BI", ()),
    ("Cambodia", "KH", ()), ("Cameroon", "CM", ()), ("Canada", "CA", ()), ("Cape Verde", "CV", ()),
    ("Central African Republic", "CF", ()), ("Chad", "TD", ()), ("Chile", "CL", ()), ("China", "CN", ()),
    ("Colombia", "CO", ()), ("Comoros", "KM", ()), ("Congo", "CG", ()), ("Costa Rica", "CR", ()),
    ("Croatia", "HR", ()), ("Cuba", "CU", ()), ("Cyprus", "CY", ()), ("Czech Republic", "CZ", ("czechia",)),
    ("Democratic Republic of the Congo", "CD", ("dr congo", "drc")), ("Denmark", "DK", ()),
    ("Djibouti", "DJ", ()), ("Dominican Republic", "DO", ()), ("Ecuador", "EC", ()), ("Egypt", "EG", ()),
    ("El Salvador", "SV", ()), ("Estonia", "EE", ()), ("Eswatini", "SZ", ("swaziland",)), ("Ethiopia", "ET", ()),
    ("Fiji", "FJ", ()), ("Finland", "FI", ()), ("France", "FR", ()), ("Gabon", "GA", ()), ("Gambia", "GM", ()),
    ("Georgia", "GE", ()), ("Germany", "DE", ("deutschland",)), ("Ghana", "GH", ()), ("Greece", "GR", ()),
    ("Guatemala", "GT", ()), ("Guinea", "GN", ()), ("Haiti", "HT", ()), ("Honduras", "HN", ()),
    ("Hong Kong", "HK", ()), ("Hungary", "HU", ()), ("Iceland", "IS", ()), ("India", "IN", ()),
    ("Indonesia", "ID", ()), ("Iran", "IR", ()), ("Iraq", "IQ", ()), ("Ireland", "IE", ("eire",)),
    ("Israel", "IL", ()), ("Italy", "IT", ()), ("Ivory Coast", "CI", ("cote d'ivoire",)), ("Jamaica", "JM", ()),
    ("Japan", "JP", ()), ("Jordan", "JO", ()), ("Kazakhstan", "KZ", ()), ("Kenya", "KE", ()), ("Kosovo", "XK", ()),
    ("Kuwait", "KW", ()), ("Kyrgyzstan", "KG", ()), ("Laos", "LA", ()), ("Latvia", "LV", ()),
    ("Lebanon", "LB", ()), ("Lesotho", "LS", ()), ("Liberia", "LR", ()), ("Libya", "LY", ()),
    ("Liechtenstein", "LI", ()), ("Lithuania", "LT", ()), ("Luxembourg", "LU", ()), ("Madagascar", "MG", ()),
    ("Malawi", "MW", ()), ("Malaysia", "MY", ()), ("Maldives", "MV", ()), ("Mali", "ML", ()), ("Malta", "MT", ()),
    ("Mauritania", "MR", ()), ("Mauritius", "MU", ()), ("Mexico", "MX", ()), ("Moldova", "MD", ()),
    ("Monaco", "MC", ()), ("Mongolia", "MN", ()), ("Montenegro", "ME", ()), ("Morocco", "MA", ()),
    ("Mozambique", "MZ", ()), ("Myanmar", "MM", ("burma",)), ("Namibia", "NA", ()), ("Nepal", "NP", ()),
    ("Netherlands", "NL", ("holland", "the netherlands")), ("New Zealand", "NZ", ()), ("Nicaragua", "NI", ()),
    ("Niger", "NE", ()), ("Nigeria", "NG", ()), ("North Korea", "KP", ()), ("North Macedonia", "MK", ("macedonia",)),
    ("Norway", "NO", ()), ("Oman", "OM", ()), ("Pakistan", "PK", ()), ("Panama", "PA", ()),
    ("Papua New Guinea", "PG", ()), ("Paraguay", "PY", ()), ("Peru", "PE", ()), ("Philippines", "PH", ()),
    ("Poland", "PL", ()), ("Portugal", "PT", ()), ("Puerto Rico", "PR", ()), ("Qatar", "QA", ()),
    ("Romania", "RO", ()), ("Russia", "RU", ("russian federation",)), ("Rwanda", "RW", ()),
    ("San Marino", "SM", ()), ("Saudi Arabia", "SA", ()), ("Senegal", "SN", ()), ("Serbia", "RS", ()),
    ("Singapore", "SG", ()), ("Slovakia", "SK", ()), ("Slovenia", "SI", ()), ("Somalia", "SO", ()),
    ("South Africa", "ZA", ()), ("South Korea", "KR", ("korea", "republic of korea")), ("South Sudan", "SS", ()),
    ("Spain", "ES", ()), ("Sri Lanka", "LK", ()), ("Sudan", "SD", ()), ("Sweden", "SE", ()),
    ("Switzerland", "CH", ()), ("Syria", "SY", ()), ("Taiwan", "TW", ()), ("Tajikistan", "TJ", ()),
    ("Tanzania", "TZ", ()), ("Thailand", "TH", ()), ("Togo", "TG", ()), ("Trinidad and Tobago", "TT", ()),
    ("Tunisia", "TN", ()), ("Turkey", "TR", ("turkiye",)), ("Turkmenistan", "TM", ()), ("Uganda", "UG", ()),
    ("Ukraine", "UA", ()), ("United Arab Emirates", "AE", ("uae", "emirates")),
    ("United Kingdom", "GB", ("uk", "u.k.", "great britain", "britain", "england", "scotland", "wales",
                              "northern ireland")),
    ("United States", "US", ("usa", "u.s.", "u.s.a.", "united states of america", "america", "the states")),
    ("Uruguay", "UY", ()), ("Uzbekistan", "UZ", ()), ("Vatican City", "VA", ()), ("Venezuela", "VE", ()),
    ("Vietnam", "VN", ("viet nam",)), ("Yemen", "YE", ()), ("Zambia", "ZM", ()), ("Zimbabwe", "ZW", ()),
)

_EU = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
       "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")
# Groups a region list may name, as ISO codes (WORLD: every country).
GROUPS: dict[str, tuple[str, ...]] = {
    "eu": _EU, "european union": _EU,
    "europe": (*_EU, "GB", "CH", "NO", "IS", "LI", "MC", "SM", "VA", "AD", "AL", "BA", "ME", "MK", "RS", "XK", "MD",
               "UA", "BY"),
    "benelux": ("BE", "NL", "LU"), "dach": ("DE", "AT", "CH"),
    "scandinavia": ("DK", "NO", "SE"), "nordics": ("DK", "NO", "SE", "FI", "IS"),
    "north america": ("US", "CA", "MX"), "uk and ireland": ("GB", "IE"),
}
WORLD = frozenset({"worldwide", "world", "world-wide", "everywhere", "international", "all countries", "global"})


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Every lower-case name, alias and code -> ISO code."""
    out: dict[str, str] = {}
    for name, code, aliases in COUNTRIES:
        out[name.lower()] = code
        out[code.lower()] = code
        for a in aliases:
            out[a] = code
    return out


def country_name(code: str) -> str:
    return next((n for n, c, _ in COUNTRIES if c == code), code)


def codes_of(region: str) -> frozenset[str] | None:
    """The countries a region of the shop's data covers (its ISO codes), None when unknown to us;
    `WORLD` regions cover every country (the empty frozenset is never returned for them)."""
    key = re.sub(r"\s+", " ", region.strip().lower())
    if key in WORLD:
        return frozenset(c for _, c, _ in COUNTRIES)
    if key in GROUPS:
        return frozenset(GROUPS[key])
    code = _names().get(key)
    return frozenset({code}) if code else None


@lru_cache(maxsize=1)
def _message_names() -> dict[str, str]:
    """The names a shopper writes: country names and other names; of the short forms only those
    people write ("UK", "USA", "UAE", "US"), matched in capitals ("us" is a pronoun)."""
    out: dict[str, str] = {}
    for name, code, aliases in COUNTRIES:
        out[name.lower()] = code
        for a in aliases:
            out[a] = code
    out["us"] = "US"
    return out


def places_in(message: str) -> list[str]:
    """ISO codes of the countries a message names, in order of appearance."""
    found: dict[str, int] = {}
    low = message.lower()
    for key, code in _message_names().items():
        if len(key) <= 3 and key.isalpha():
            m = re.search(r"(?<![A-Za-z])" + re.escape(key.upper()) + r"(?![A-Za-z])", message)
        else:
            m = re.search(r"(?<![a-z])" + re.escape(key) + r"(?![a-z])", low)
        if m and (code not in found or m.start() < found[code]):
            found[code] = m.start()
    return sorted(found, key=lambda c: found[c])


def regions_in(message: str, regions: list[str]) -> list[str]:
    """Regions of the shop's data that a message names as written ("the EU", "Benelux")."""
    low = message.lower()
    return [r for r in regions if len(r) > 3 and re.search(r"(?<![a-z])" + re.escape(r.lower()) + r"(?![a-z])", low)]
