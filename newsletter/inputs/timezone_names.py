"""The tables behind the time-zone hints: which region to write for a place, an abbreviation or an old name.

Suggestions come from these tables only, never from how a typed name is spelt: "America/Greenville"
is nearest in letters to "America/Recife", which is in Brazil.
"""

from __future__ import annotations

NEW_YORK, CHICAGO, DENVER, PHOENIX = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
)
LOS_ANGELES, ANCHORAGE, HONOLULU = "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu"

#: A place → the zones to choose from, each with where it applies ("" when it is the whole place).
Choices = tuple[tuple[str, str], ...]

_US_STATES: dict[str, tuple[str, str, str]] = {
    # code: (name, zone of most of the state, the part that differs, if any)
    "AL": ("Alabama", CHICAGO, ""),
    "AK": ("Alaska", ANCHORAGE, "the Aleutians: America/Adak"),
    "AZ": ("Arizona", PHOENIX, "the Navajo Nation: America/Denver"),
    "AR": ("Arkansas", CHICAGO, ""),
    "CA": ("California", LOS_ANGELES, ""),
    "CO": ("Colorado", DENVER, ""),
    "CT": ("Connecticut", NEW_YORK, ""),
    "DE": ("Delaware", NEW_YORK, ""),
    "DC": ("District of Columbia", NEW_YORK, ""),
    "FL": ("Florida", NEW_YORK, "the western panhandle: America/Chicago"),
    "GA": ("Georgia", NEW_YORK, ""),
    "HI": ("Hawaii", HONOLULU, ""),
    "ID": ("Idaho", "America/Boise", "the north: America/Los_Angeles"),
    "IL": ("Illinois", CHICAGO, ""),
    "IN": ("Indiana", "America/Indiana/Indianapolis", "the north-west and south-west: America/Chicago"),
    "IA": ("Iowa", CHICAGO, ""),
    "KS": ("Kansas", CHICAGO, "the far west: America/Denver"),
    "KY": ("Kentucky", NEW_YORK, "the west: America/Chicago"),
    "LA": ("Louisiana", CHICAGO, ""),
    "ME": ("Maine", NEW_YORK, ""),
    "MD": ("Maryland", NEW_YORK, ""),
    "MA": ("Massachusetts", NEW_YORK, ""),
    "MI": ("Michigan", "America/Detroit", "the western Upper Peninsula: America/Menominee"),
    "MN": ("Minnesota", CHICAGO, ""),
    "MS": ("Mississippi", CHICAGO, ""),
    "MO": ("Missouri", CHICAGO, ""),
    "MT": ("Montana", DENVER, ""),
    "NE": ("Nebraska", CHICAGO, "the west: America/Denver"),
    "NV": ("Nevada", LOS_ANGELES, ""),
    "NH": ("New Hampshire", NEW_YORK, ""),
    "NJ": ("New Jersey", NEW_YORK, ""),
    "NM": ("New Mexico", DENVER, ""),
    "NY": ("New York", NEW_YORK, ""),
    "NC": ("North Carolina", NEW_YORK, ""),
    "ND": ("North Dakota", CHICAGO, "the south-west: America/Denver"),
    "OH": ("Ohio", NEW_YORK, ""),
    "OK": ("Oklahoma", CHICAGO, ""),
    "OR": ("Oregon", LOS_ANGELES, "Malheur County: America/Boise"),
    "PA": ("Pennsylvania", NEW_YORK, ""),
    "RI": ("Rhode Island", NEW_YORK, ""),
    "SC": ("South Carolina", NEW_YORK, ""),
    "SD": ("South Dakota", CHICAGO, "the west: America/Denver"),
    "TN": ("Tennessee", CHICAGO, "the east (Knoxville, Chattanooga): America/New_York"),
    "TX": ("Texas", CHICAGO, "El Paso and Hudspeth counties: America/Denver"),
    "UT": ("Utah", DENVER, ""),
    "VT": ("Vermont", NEW_YORK, ""),
    "VA": ("Virginia", NEW_YORK, ""),
    "WA": ("Washington", LOS_ANGELES, ""),
    "WV": ("West Virginia", NEW_YORK, ""),
    "WI": ("Wisconsin", CHICAGO, ""),
    "WY": ("Wyoming", DENVER, ""),
    "PR": ("Puerto Rico", "America/Puerto_Rico", ""),
}

_US: Choices = (
    (NEW_YORK, "Eastern"),
    (CHICAGO, "Central"),
    (DENVER, "Mountain"),
    (PHOENIX, "Arizona"),
    (LOS_ANGELES, "Pacific"),
    (ANCHORAGE, "Alaska"),
    (HONOLULU, "Hawaii"),
)
_CANADA: Choices = (
    ("America/Toronto", "Ontario, Quebec"),
    ("America/Vancouver", "British Columbia"),
    ("America/Edmonton", "Alberta"),
    ("America/Winnipeg", "Manitoba"),
    ("America/Regina", "Saskatchewan"),
    ("America/Halifax", "Nova Scotia, New Brunswick, Prince Edward Island"),
    ("America/St_Johns", "Newfoundland"),
)
_AUSTRALIA: Choices = (
    ("Australia/Sydney", "New South Wales, ACT"),
    ("Australia/Melbourne", "Victoria"),
    ("Australia/Brisbane", "Queensland"),
    ("Australia/Adelaide", "South Australia"),
    ("Australia/Perth", "Western Australia"),
    ("Australia/Hobart", "Tasmania"),
    ("Australia/Darwin", "Northern Territory"),
)
_MEXICO: Choices = (("America/Mexico_City", "most of the country"), ("America/Tijuana", "Baja California"))
_BRAZIL: Choices = (("America/Sao_Paulo", "most of the south and east"), ("America/Manaus", "Amazonas"))

_COUNTRIES: dict[str, Choices] = {
    "united states": _US,
    "usa": _US,
    "us": _US,
    "united kingdom": (("Europe/London", ""),),
    "uk": (("Europe/London", ""),),
    "great britain": (("Europe/London", ""),),
    "britain": (("Europe/London", ""),),
    "england": (("Europe/London", ""),),
    "scotland": (("Europe/London", ""),),
    "wales": (("Europe/London", ""),),
    "northern ireland": (("Europe/London", ""),),
    "ireland": (("Europe/Dublin", ""),),
    "canada": _CANADA,
    "australia": _AUSTRALIA,
    "new zealand": (("Pacific/Auckland", ""),),
    "nz": (("Pacific/Auckland", ""),),
    "germany": (("Europe/Berlin", ""),),
    "france": (("Europe/Paris", ""),),
    "spain": (("Europe/Madrid", "the mainland"), ("Atlantic/Canary", "the Canary Islands")),
    "italy": (("Europe/Rome", ""),),
    "netherlands": (("Europe/Amsterdam", ""),),
    "holland": (("Europe/Amsterdam", ""),),
    "belgium": (("Europe/Brussels", ""),),
    "switzerland": (("Europe/Zurich", ""),),
    "austria": (("Europe/Vienna", ""),),
    "portugal": (("Europe/Lisbon", "the mainland"), ("Atlantic/Azores", "the Azores")),
    "sweden": (("Europe/Stockholm", ""),),
    "norway": (("Europe/Oslo", ""),),
    "denmark": (("Europe/Copenhagen", ""),),
    "poland": (("Europe/Warsaw", ""),),
    "greece": (("Europe/Athens", ""),),
    "india": (("Asia/Kolkata", ""),),
    "mexico": _MEXICO,
    "brazil": _BRAZIL,
    "south africa": (("Africa/Johannesburg", ""),),
    "japan": (("Asia/Tokyo", ""),),
    "philippines": (("Asia/Manila", ""),),
    "singapore": (("Asia/Singapore", ""),),
}
_REGIONS: dict[str, Choices] = {
    "ontario": _CANADA[:1],
    "quebec": _CANADA[:1],
    "british columbia": _CANADA[1:2],
    "alberta": _CANADA[2:3],
    "manitoba": _CANADA[3:4],
    "saskatchewan": _CANADA[4:5],
    "nova scotia": _CANADA[5:6],
    "new brunswick": _CANADA[5:6],
    "newfoundland": _CANADA[6:7],
    "new south wales": _AUSTRALIA[:1],
    "nsw": _AUSTRALIA[:1],
    "victoria": _AUSTRALIA[1:2],
    "queensland": _AUSTRALIA[2:3],
    "south australia": _AUSTRALIA[3:4],
    "western australia": _AUSTRALIA[4:5],
    "tasmania": _AUSTRALIA[5:6],
}


def place_choices(piece: str) -> tuple[str, Choices] | None:
    """(the place's name, its zones) for a state, province or country written as ``piece``.

    A two-letter US state code ("SC") counts only in capitals: "in", "or" and "me" are words too.
    """
    word = " ".join(piece.replace("_", " ").replace(".", "").split()).casefold()
    for code, (name, zone, other) in _US_STATES.items():
        if word == name.casefold() or piece.strip() == code:
            if not other:
                return name, ((zone, ""),)
            where, elsewhere = other.split(": ")
            return name, ((zone, "most of the state"), (elsewhere, where))
    for table in (_COUNTRIES, _REGIONS):
        if word in table:
            return " ".join(piece.replace("_", " ").split()), table[word]
    return None


#: Abbreviations people write for a zone → (the region to write, a word on where it applies).
ABBREVIATIONS: dict[str, Choices] = {
    **dict.fromkeys(("EST", "EDT", "ET", "EST5EDT", "EASTERN"), ((NEW_YORK, "US Eastern time"),)),
    **dict.fromkeys(("CST", "CDT", "CST6CDT", "CENTRAL"), ((CHICAGO, "US Central time"),)),
    "CT": ((CHICAGO, "US Central time"), (NEW_YORK, "Connecticut")),
    **dict.fromkeys(("MST", "MDT", "MST7MDT", "MOUNTAIN", "NAVAJO"), ((DENVER, "US Mountain time"),)),
    "MT": ((DENVER, "US Mountain time, Montana"),),
    **dict.fromkeys(("PST", "PDT", "PT", "PST8PDT", "PACIFIC"), ((LOS_ANGELES, "US Pacific time"),)),
    **dict.fromkeys(("AKST", "AKDT"), ((ANCHORAGE, "Alaska"),)),
    **dict.fromkeys(("HST", "HDT"), ((HONOLULU, "Hawaii"),)),
    **dict.fromkeys(
        ("AST", "ADT"), (("America/Halifax", "Atlantic Canada"), ("America/Puerto_Rico", "Puerto Rico"))
    ),
    **dict.fromkeys(("NST", "NDT"), (("America/St_Johns", "Newfoundland"),)),
    **dict.fromkeys(
        ("GMT", "BST", "GMT0", "GMT+0", "GMT-0", "GREENWICH", "GB", "GB-EIRE"), (("Europe/London", "UK"),)
    ),
    "IST": (("Asia/Kolkata", "India"), ("Europe/Dublin", "Ireland"), ("Asia/Jerusalem", "Israel")),
    **dict.fromkeys(
        ("CET", "CEST", "MET", "MEST"), (("Europe/Paris", "France"), ("Europe/Berlin", "Germany"))
    ),
    **dict.fromkeys(("EET", "EEST"), (("Europe/Athens", "Greece"),)),
    **dict.fromkeys(("WET", "WEST"), (("Europe/Lisbon", "Portugal"),)),
    **dict.fromkeys(("AEST", "AEDT"), (("Australia/Sydney", "New South Wales"),)),
    **dict.fromkeys(("ACST", "ACDT"), (("Australia/Adelaide", "South Australia"),)),
    "AWST": (("Australia/Perth", "Western Australia"),),
    **dict.fromkeys(("NZST", "NZDT", "NZ"), (("Pacific/Auckland", "New Zealand"),)),
    "JST": (("Asia/Tokyo", "Japan"),),
    "KST": (("Asia/Seoul", "South Korea"),),
    "HKT": (("Asia/Hong_Kong", "Hong Kong"),),
    "SGT": (("Asia/Singapore", "Singapore"),),
    "MSK": (("Europe/Moscow", "Moscow"),),
    "SAST": (("Africa/Johannesburg", "South Africa"),),
}
#: Zones with no daylight saving and no place: meeting times would drift by an hour half the year.
FIXED = frozenset({"UTC", "UCT", "UNIVERSAL", "ZULU", "Z", "ETC/UTC", "ETC/UCT", "ETC/UNIVERSAL", "ETC/ZULU"})
#: Old names kept in the time-zone database for compatibility → the region name that replaced them.
LEGACY: dict[str, str] = {
    "US/Alaska": ANCHORAGE,
    "US/Aleutian": "America/Adak",
    "US/Arizona": PHOENIX,
    "US/Central": CHICAGO,
    "US/East-Indiana": "America/Indiana/Indianapolis",
    "US/Eastern": NEW_YORK,
    "US/Hawaii": HONOLULU,
    "US/Indiana-Starke": "America/Indiana/Knox",
    "US/Michigan": "America/Detroit",
    "US/Mountain": DENVER,
    "US/Pacific": LOS_ANGELES,
    "US/Samoa": "Pacific/Pago_Pago",
    "Canada/Atlantic": "America/Halifax",
    "Canada/Central": "America/Winnipeg",
    "Canada/Eastern": "America/Toronto",
    "Canada/Mountain": "America/Edmonton",
    "Canada/Newfoundland": "America/St_Johns",
    "Canada/Pacific": "America/Vancouver",
    "Canada/Saskatchewan": "America/Regina",
    "Canada/Yukon": "America/Whitehorse",
    "Brazil/Acre": "America/Rio_Branco",
    "Brazil/DeNoronha": "America/Noronha",
    "Brazil/East": "America/Sao_Paulo",
    "Brazil/West": "America/Manaus",
    "Chile/Continental": "America/Santiago",
    "Chile/EasterIsland": "Pacific/Easter",
    "Mexico/BajaNorte": "America/Tijuana",
    "Mexico/BajaSur": "America/Mazatlan",
    "Mexico/General": "America/Mexico_City",
    "Cuba": "America/Havana",
    "Egypt": "Africa/Cairo",
    "Eire": "Europe/Dublin",
    "Hongkong": "Asia/Hong_Kong",
    "Iceland": "Atlantic/Reykjavik",
    "Iran": "Asia/Tehran",
    "Israel": "Asia/Jerusalem",
    "Jamaica": "America/Jamaica",
    "Japan": "Asia/Tokyo",
    "Kwajalein": "Pacific/Kwajalein",
    "Libya": "Africa/Tripoli",
    "NZ-CHAT": "Pacific/Chatham",
    "PRC": "Asia/Shanghai",
    "Poland": "Europe/Warsaw",
    "Portugal": "Europe/Lisbon",
    "ROC": "Asia/Taipei",
    "ROK": "Asia/Seoul",
    "Singapore": "Asia/Singapore",
    "Turkey": "Europe/Istanbul",
    "W-SU": "Europe/Moscow",
}
#: Regions tried, in this order, for a fixed offset such as UTC-5 (the first few whose winter or
#: summer clock shows that offset are suggested).
COMMON = (
    *(zone for zone, _ in _US),
    "America/Halifax",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Brisbane",
    "Australia/Sydney",
    "Pacific/Auckland",
)
