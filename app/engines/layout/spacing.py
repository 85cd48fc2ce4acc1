"""Spaces that OCR dropped, put back in names and addresses ("UNIHAKKA INTERNATIONALSDNBHD",
"44300BATANGKALI,SELANGOR").

Receipt printers use narrow fonts, and OCR often reads a line as one or two words. A value read
that way is the right text with the wrong spacing, and a person checking it (or a comparison with
what is printed) reads the words, so the engine restores them: a space after a comma, between a
word and a number, at a lower-to-upper case change, and inside long runs of letters by a word
segmentation over a lexicon of common business and address words (English and Malay). Digits
read for letters inside words ("L0T") and the reverse ("412o0") are put right too. Grounding
ignores whitespace, so the value is still found on the page; each guess lowers the value's score
(``guesses``), since a guessed boundary is the likeliest error.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

# Words that name businesses and places on receipts and invoices. Words of three letters or fewer
# split a run only where every other piece is a known word too ("SDNBHD"), except the few that are
# never inside other words.
_WORD_LIST = (
    "sdn bhd berhad enterprise enterprises trading trade traders international global holdings group "
    "company corporation industries industrial industry marketing management services service "
    "solutions systems technology technologies engineering construction development properties "
    "property resources supplies supply supplier suppliers distribution distributor distributors "
    "agency agencies network restaurant restoran cafe kafe bakery bakeries bakers kitchen food foods "
    "catering seafood noodle noodles chicken rice coffee tea bistro grill steamboat kopitiam mamak "
    "nasi kedai bakeri florist flower flowers handicraft handicrafts gift gifts hardware machinery "
    "electrical electronics electric stationery stationer bookstore books book printing furniture "
    "pharmacy health beauty medical clinic optical fashion textile textiles tailor boutique jewellery "
    "jewelry supermarket hypermarket minimarket market mart store stores shop shopping centre center "
    "mall megamall plaza outlet station petrol motor motors auto automobile tyre tyres workshop "
    "western eastern northern southern central golden gold silver diamond royal grand speed super "
    "fresh green home house living garden village city world family happy lucky star sun moon new big "
    "one two three four five six seven eight nine ten first second third syarikat perniagaan "
    "perusahaan niaga kilang jalan lorong persiaran lebuh lebuhraya bandar kampung kawasan "
    "perindustrian pusat seksyen pasar medan desa jaya indah utama baru bahru lama selatan utara "
    "timur barat tengah bukit sungai batu kota pulau tanjung teluk simpang permai damai mutiara "
    "wangsa taman tingkat wisma menara kompleks blok aras metro perdana off the and of kuala lumpur "
    "selangor johor kedah kelantan perak pahang melaka malacca sabah sarawak penang pinang negeri "
    "sembilan terengganu perlis labuan putrajaya cyberjaya malaysia singapore darul ehsan takzim "
    "wilayah persekutuan petaling shah alam subang klang puchong cheras kepong ampang setapak kajang "
    "semenyih rawang gombak seri kembangan serdang bangi ipoh seremban kuching kota kinabalu road "
    "street avenue lane drive park square tower building floor ground level block unit suite complex "
    "industrial estate"
)
WORDS = frozenset(_WORD_LIST.split())
_SHORT_ALWAYS = frozenset({"sdn", "bhd", "jln", "tmn", "lrg"})
_FULLWIDTH = str.maketrans({"\uff0c": ",", "\uff08": "(", "\uff09": ")", "\uff1a": ":", "\u3002": "."})
_LOOKALIKE_O = re.compile(r"(?<=[A-Z])0+(?=[A-Z])")
_LOOKALIKE_0 = re.compile(r"(?<=\d)[oO](?=\d)")
_LOOKALIKE_1 = re.compile(r"(?<=\d)[lI](?=\d)")
_NUMBER_THEN_WORD = re.compile(
    r"(?<![A-Za-z\d])(\d{2,}(?=[A-Za-z]{3})|\d(?=[A-Za-z]{4}))(?!(?i:rd|th|nd|st)\b)"
)
_ACRONYM = re.compile(r"[b-df-hj-np-tv-xz]{2,3}")  # KPB, PJU: no vowel, so no word cut short
_SDN_BHD = "SDNBHD"
_MIN_RUN = 6
_MIN_UNKNOWN = 4
_LETTERS = re.compile(r"[A-Za-z]+")


def respace(text: str) -> str:
    """``text`` with the spaces OCR most likely dropped put back."""
    text = text.translate(_FULLWIDTH)
    text = _LOOKALIKE_O.sub(lambda m: "O" * len(m.group(0)), text)  # L0T, F00DICI0US
    text = _LOOKALIKE_0.sub("0", text)  # 412o0
    text = _LOOKALIKE_1.sub("1", text)  # 7/1l8B
    text = re.sub(r"(?<=[A-Za-z0-9.)]),(?=[A-Za-z(])|(?<=[A-Za-z.)]),(?=\d)", ", ", text)
    # PERUBATAN2, Lot3Jalan; not SS6 or L1
    text = re.sub(r"(?<=[A-Za-z]{3})(?=\d+(?:[^A-Za-z\d]|$|[A-Za-z]{3}))", " ", text)
    text = _NUMBER_THEN_WORD.sub(r"\1 ", text)  # 44300BATANG; not 3RD
    text = re.sub(r"(?<=[A-Za-z])&(?=[A-Za-z0-9])", " & ", text)  # FLORIST&HANDICRAFT, 1851-A&1851-B
    text = re.sub(r"(?<=[A-Za-z.])\((?=[A-Za-z0-9])", " (", text)
    text = re.sub(r"(?<=[A-Za-z]\))(?=[A-Za-z])", " ", text)
    text = re.sub(r"(?<=[a-z]{2})(?=[A-Z][a-z])", " ", text)  # KawasanPerindustrian
    text = re.sub(r"(?<=[A-Za-z]{2}\.)(?=[A-Za-z])|(?<=[A-Za-z]\.)(?=[A-Za-z]{3})", " ", text)  # MR.D.I.Y.SDN
    text = _LETTERS.sub(lambda m: _split_run(m.group(0)), text)
    return " ".join(text.split())


def guesses(original: str, spaced: str) -> int:
    """How much of ``spaced`` is guessed rather than read: characters replaced, and spaces put
    back other than after a comma (a guessed word boundary is a likely error)."""
    a, b = "".join(original.split()), "".join(spaced.split())
    changed = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
    inserted = spaced.count(" ") - spaced.count(", ") - (original.count(" ") - original.count(", "))
    return changed + max(0, inserted)


def _split_run(run: str) -> str:
    if len(run) < _MIN_RUN or not (run.isupper() or run.islower() or run[1:].islower()):
        return run
    if (
        run.isupper()
        and len(run) == len(_SDN_BHD)
        and sum(a != b for a, b in zip(run, _SDN_BHD, strict=True)) == 1
    ):
        return "SDN BHD"  # the most common legal form, one letter misread ("SDNEHD")
    pieces = _segment(run.lower())
    if len(pieces) < 2:
        return run
    out, at = [], 0
    for piece in pieces:
        out.append(run[at : at + len(piece)])
        at += len(piece)
    return " ".join(out)


@lru_cache(maxsize=4096)
def _segment(run: str) -> tuple[str, ...]:
    """The split of ``run`` into the fewest pieces, known words cheap and unknown letters dear; a
    split is kept only when known words cover most of the run and it has at most one unknown piece."""
    n = len(run)
    best: list[tuple[float, tuple[str, ...]] | None] = [None] * (n + 1)
    best[0] = (0.0, ())
    for end in range(1, n + 1):
        for start in range(max(0, end - 20), end):
            previous = best[start]
            if previous is None:
                continue
            piece = run[start:end]
            if piece in WORDS:
                cost = 1.0
            elif len(piece) >= _MIN_UNKNOWN or piece == run or _ACRONYM.fullmatch(piece):
                cost = 1.0 + 0.6 * len(piece)
            else:
                continue  # "PASARAYA" is not "PASAR AYA": a stray short piece is no word
            candidate = (previous[0] + cost, (*previous[1], piece))
            current = best[end]
            if current is None or candidate[0] < current[0]:
                best[end] = candidate
    result = best[n]
    if result is None:
        return (run,)
    pieces = result[1]
    unknown = [p for p in pieces if p not in WORDS]
    known_letters = sum(len(p) for p in pieces if p in WORDS)
    # a short word beside an unknown piece is more likely part of it ("THEODORE" is not "THE ODORE")
    beside = any(
        (a in WORDS and len(a) <= 3 and a not in _SHORT_ALWAYS and b not in WORDS)
        or (b in WORDS and len(b) <= 3 and b not in _SHORT_ALWAYS and a not in WORDS)
        for a, b in itertools.pairwise(pieces)
    )
    if len(unknown) > 1 or known_letters < 0.35 * n or beside:
        return (run,)
    return pieces
