"""Directory of Vietnam's provinces and communes after the 2025 reform, with fuzzy search.

Since 1/7/2025 there are 34 provinces (tỉnh / thành phố trực thuộc trung ương) and 3,321
communes (xã, phường, đặc khu). The data comes from the ``vietnam-provinces`` package.

Search is accent-insensitive (see :func:`bot.domain.text.fold`) and typo-tolerant
(rapidfuzz). A query may carry an optional division-type word in front ("xã", "phường",
"p.", "đặc khu") and an optional province at the end or at the front ("Lào Cai",
"tỉnh Lào Cai", "tp HCM"); old (pre-2025) province names such as "Yên Bái" or "Bình Dương"
are understood as the province they were merged into. When a province is named, it
decides between communes that share a name; otherwise every same-name commune is listed,
in official province order (north to south).

Pure domain code: no I/O besides reading the package data, no Telegram imports.
"""

from __future__ import annotations

import bisect
import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from bot.domain.text import fold

__all__ = ["Commune", "CommuneDirectory", "CommuneMatch", "Province"]

DIVISION_XA = "xã"
DIVISION_PHUONG = "phường"
DIVISION_DAC_KHU = "đặc khu"

_FOLDED_DIVISIONS = {d: fold(d) for d in (DIVISION_XA, DIVISION_PHUONG, DIVISION_DAC_KHU)}

# Longest accepted query; anything longer is cut before folding (keeps garbage cheap).
_MAX_QUERY_CHARS = 120
# rapidfuzz Indel-ratio cut-off for a commune name to count as a (typo) match at all.
_FUZZY_CUTOFF = 78.0
# Fuzzy correction of a single unknown word against the words of known names.
_WORD_FIX_CUTOFF = 80.0
# A province-restricted search "decides" the query when its best hit scores at least this.
_DECISIVE = 85.0
# Score deducted when the query asks for another division type ("phường X" vs "Xã X").
_DIVISION_PENALTY = 3.0
# Fuzzy matching of a (mistyped) province at the end of the query.
_PROVINCE_FUZZY_CUTOFF = 85.0

# Leading words that name the division type; folded token tuples -> division type.
_DIVISION_WORDS: dict[tuple[str, ...], str | None] = {
    ("xa",): DIVISION_XA,
    ("x",): DIVISION_XA,
    ("phuong",): DIVISION_PHUONG,
    ("p",): DIVISION_PHUONG,
    ("dac", "khu"): DIVISION_DAC_KHU,
    ("dk",): DIVISION_DAC_KHU,
    # Old unit types people still type; they say nothing about today's type.
    ("thi", "tran"): None,
    ("tt",): None,
}
# Words that may precede a province name.
_PROVINCE_WORDS: tuple[tuple[str, ...], ...] = (("tinh",), ("thanh", "pho"), ("tp",))
# Trailing words that carry no information ("..., Việt Nam").
_COUNTRY_WORDS: tuple[tuple[str, ...], ...] = (("viet", "nam"), ("vn",))
# An old district ("huyện Bảo Yên") often follows the commune; "huyen" is never part of a
# commune name, so everything from it on is dropped.
_DISTRICT_WORDS = frozenset({"huyen"})

# Provinces merged away in 2025 (folded old name -> folded short name of the new province).
_OLD_PROVINCES: dict[str, str] = {
    "ha giang": "tuyen quang",
    "yen bai": "lao cai",
    "bac kan": "thai nguyen",
    "vinh phuc": "phu tho",
    "hoa binh": "phu tho",
    "bac giang": "bac ninh",
    "thai binh": "hung yen",
    "hai duong": "hai phong",
    "ha nam": "ninh binh",
    "nam dinh": "ninh binh",
    "quang binh": "quang tri",
    "quang nam": "da nang",
    "kon tum": "quang ngai",
    "binh dinh": "gia lai",
    "ninh thuan": "khanh hoa",
    "dak nong": "lam dong",
    "binh thuan": "lam dong",
    "phu yen": "dak lak",
    "binh duong": "ho chi minh",
    "ba ria vung tau": "ho chi minh",
    "binh phuoc": "dong nai",
    "long an": "tay ninh",
    "soc trang": "can tho",
    "hau giang": "can tho",
    "ben tre": "vinh long",
    "tra vinh": "vinh long",
    "tien giang": "dong thap",
    "bac lieu": "ca mau",
    "kien giang": "an giang",
}
# Other common ways of writing a province (folded) -> folded short name.
_NICKNAMES: dict[str, str] = {
    "hcm": "ho chi minh",
    "tphcm": "ho chi minh",
    "sai gon": "ho chi minh",
    "hn": "ha noi",
    "thua thien hue": "hue",
    "brvt": "ho chi minh",
    "ba ria": "ho chi minh",
    "vung tau": "ho chi minh",
    "daklak": "dak lak",
    "dac lac": "dak lak",
}


@dataclass(frozen=True, slots=True)
class Province:
    code: int
    name: str  # "Tỉnh Lào Cai", "Thành phố Hà Nội"
    short_name: str  # "Lào Cai", "Hà Nội"


@dataclass(frozen=True, slots=True)
class Commune:
    code: int
    name: str  # "Xã Phúc Khánh"
    province_code: int
    division_type: str  # "xã" | "phường" | "đặc khu"
    short_name: str  # "Phúc Khánh"


@dataclass(frozen=True, slots=True)
class CommuneMatch:
    commune: Commune
    province: Province
    score: float  # 0..100

    def label(self) -> str:
        """Button/list text, e.g. "Xã Phúc Khánh, Lào Cai".

        The province is always shown because many names exist in several provinces. The
        few names that occur twice in the same province get the commune code appended.
        """
        text = f"{self.commune.name}, {self.province.short_name}"
        if (self.commune.name, self.commune.province_code) in _duplicate_names():
            text += f" (mã {self.commune.code})"
        return text


@functools.cache
def _duplicate_names() -> frozenset[tuple[str, int]]:
    """(full name, province code) pairs carried by more than one commune in the data."""
    from vietnam_provinces.lookup import WARD_MAPPING

    seen: set[tuple[str, int]] = set()
    duplicates: set[tuple[str, int]] = set()
    for ward in WARD_MAPPING.values():
        key = (" ".join(ward.name.split()), int(ward.province_code))
        (duplicates if key in seen else seen).add(key)
    return frozenset(duplicates)


def _compact(folded: str) -> str:
    return folded.replace(" ", "")


def _starts_with(tokens: Sequence[str], words: Sequence[str]) -> bool:
    return len(tokens) >= len(words) and tuple(tokens[: len(words)]) == tuple(words)


def _ends_with(tokens: Sequence[str], words: Sequence[str]) -> bool:
    start = len(tokens) - len(words)
    return start >= 0 and tuple(tokens[start:]) == tuple(words)


def _strip_division(tokens: list[str]) -> tuple[list[str], str | None, bool]:
    """Drop one leading division-type word. Returns (rest, division, stripped?)."""
    for words, division in _DIVISION_WORDS.items():
        if _starts_with(tokens, words) and len(tokens) > len(words):
            return tokens[len(words) :], division, True
    return tokens, None, False


def _strip_province_words_at_end(tokens: list[str]) -> list[str]:
    for words in _PROVINCE_WORDS:
        if _ends_with(tokens, words):
            return tokens[: len(tokens) - len(words)]
    return tokens


def _strip_province_words_at_start(tokens: list[str]) -> list[str]:
    for words in _PROVINCE_WORDS:
        if _starts_with(tokens, words):
            return tokens[len(words) :]
    return tokens


def _cut_district(tokens: list[str]) -> list[str]:
    """Drop an old district and what follows ("huyện Bảo Yên", "quận 1", "q.1")."""
    for i in range(1, len(tokens)):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if (
            token in _DISTRICT_WORDS
            or (token in ("quan", "q") and following.isdigit())
            or (token[0] == "q" and token[1:].isdigit())
        ):
            return tokens[:i]
    return tokens


@dataclass(frozen=True, slots=True)
class _Interpretation:
    """One way of reading the query: which words name the commune, and in which province."""

    primary: str  # folded name words, fuzzy-matched
    alternates: tuple[str, ...]  # other readings of the same words, matched exactly only
    division: str | None  # division type asked for, if any
    province_code: int | None
    province_exact: bool = True  # False when the province words were mistyped


class _NameIndex:
    """Folded short names of a set of communes, for exact, prefix, typo and word lookup.

    WRatio over all ~2,700 distinct names costs ~4 ms per query, so scoring is split into
    cheap parts: exact dict look-up, bisect prefix scan, plain Indel ratio over all names
    (typos) and over word-sorted names (swapped words), and an inverted word index for
    queries with extra words ("phuc khanh bao yen") or missing words ("quoc tu giam").
    """

    __slots__ = (
        "codes_of_key",
        "exact",
        "key_words",
        "keys",
        "postings",
        "sorted_keys",
        "sorted_word_keys",
        "vocabulary",
    )

    def __init__(self, communes: Iterable[tuple[Commune, str, str]]) -> None:
        """``communes``: (commune, folded short name, folded full name)."""
        codes_of: dict[str, list[int]] = {}
        exact: dict[str, list[int]] = {}
        for commune, folded_short, folded_full in communes:
            codes_of.setdefault(folded_short, []).append(commune.code)
            exact.setdefault(_compact(folded_short), []).append(commune.code)
            # The full name typed as one ("Phường Phương Liệt": the leading "phuong" cannot
            # be told apart from the division word) also matches exactly.
            exact.setdefault(_compact(folded_full), []).append(commune.code)
        self.keys: list[str] = list(codes_of)
        self.codes_of_key: list[tuple[int, ...]] = [tuple(codes_of[k]) for k in self.keys]
        self.exact: dict[str, tuple[int, ...]] = {
            k: tuple(dict.fromkeys(v)) for k, v in exact.items()
        }
        self.sorted_keys: list[tuple[str, int]] = sorted((k, i) for i, k in enumerate(self.keys))
        self.sorted_word_keys: list[str] = [" ".join(sorted(k.split())) for k in self.keys]
        self.key_words: list[int] = []
        postings: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            words = set(key.split())
            self.key_words.append(len(words))
            for word in words:
                postings.setdefault(word, []).append(i)
        self.postings: dict[str, tuple[int, ...]] = {w: tuple(v) for w, v in postings.items()}
        self.vocabulary: list[str] = sorted(self.postings)

    def find(
        self, interp: _Interpretation, fuzzy_limit: int | None
    ) -> dict[int, tuple[float, float]]:
        """Commune code -> (score, tie-break) for the interpretation's name words.

        ``fuzzy_limit=None`` looks for exact (accent-insensitive) name matches only.
        """
        hits: dict[int, tuple[float, float]] = {}

        def add(key_index: int, score: float, tiebreak: float) -> None:
            for code in self.codes_of_key[key_index]:
                if hits.get(code, (-1.0, -1.0)) < (score, tiebreak):
                    hits[code] = (score, tiebreak)

        for name in (interp.primary, *interp.alternates):
            if len(name) >= 2:
                for code in self.exact.get(_compact(name), ()):
                    hits[code] = (100.0, 100.0)
        query = interp.primary
        if fuzzy_limit is None or len(query) < 3:
            return hits

        # The start of a name ("phuc kh"), ranked by how much of it was typed.
        i = bisect.bisect_left(self.sorted_keys, (query, -1))
        while i < len(self.sorted_keys) and self.sorted_keys[i][0].startswith(query):
            key, key_index = self.sorted_keys[i]
            add(key_index, 80.0 + 10.0 * len(query) / len(key), 0.0)
            i += 1
        if len(query) < 4:
            return hits

        # Typos in the whole name, and the same with the words sorted (swapped words).
        for _, score, key_index in process.extract(
            query,
            self.keys,
            scorer=fuzz.ratio,
            processor=None,
            limit=fuzzy_limit,
            score_cutoff=_FUZZY_CUTOFF,
        ):
            add(key_index, min(float(score), 99.0), float(score))
        sorted_query = " ".join(sorted(query.split()))
        if sorted_query != query:
            for _, score, key_index in process.extract(
                sorted_query,
                self.sorted_word_keys,
                scorer=fuzz.ratio,
                processor=None,
                limit=fuzzy_limit,
                score_cutoff=_FUZZY_CUTOFF,
            ):
                add(key_index, 0.95 * float(score), 0.0)

        # Whole words: the name's words all in the query (extra words such as an old
        # district), or the query's words all in the name (part of a long name).
        words, corrected = self._correct(query.split())
        penalty = 3.0 if corrected else 0.0
        text = " ".join(words)
        distinct = set(words)
        counts: dict[int, int] = {}
        for word in distinct:
            for key_index in self.postings.get(word, ()):
                counts[key_index] = counts.get(key_index, 0) + 1
        for key_index, shared in counts.items():
            key = self.keys[key_index]
            if shared == self.key_words[key_index]:
                coverage = min(len(key), len(text)) / max(len(key), len(text))
            elif shared == len(distinct):
                coverage = len(text) / len(key)
            else:
                continue
            add(key_index, 80.0 + 10.0 * coverage - penalty, fuzz.ratio(query, key))
        return hits

    def _correct(self, words: list[str]) -> tuple[list[str], bool]:
        """Replace unknown words by the closest known word ("khan" -> "khanh")."""
        result: list[str] = []
        corrected = False
        for word in words:
            if word not in self.postings and len(word) >= 4:
                best = process.extractOne(
                    word,
                    self.vocabulary,
                    scorer=fuzz.ratio,
                    processor=None,
                    score_cutoff=_WORD_FIX_CUTOFF,
                )
                if best is not None:
                    word, corrected = best[0], True
            result.append(word)
        return result, corrected


class CommuneDirectory:
    """All provinces and communes, loaded once at start-up; lookups are read-only."""

    def __init__(self, provinces: Sequence[Province], communes: Sequence[Commune]) -> None:
        self._provinces: dict[int, Province] = {p.code: p for p in provinces}
        self._province_rank = {p.code: i for i, p in enumerate(provinces)}
        self._communes: dict[int, Commune] = {c.code: c for c in communes}
        self._commune_rank = {c.code: i for i, c in enumerate(communes)}
        self._by_province: dict[int, list[Commune]] = {p.code: [] for p in provinces}
        for commune in communes:
            self._by_province[commune.province_code].append(commune)

        folded = [(c, *self._fold_names(c)) for c in communes]
        self._index = _NameIndex(folded)
        self._province_index = {
            code: _NameIndex(row for row in folded if row[0].province_code == code)
            for code in self._provinces
        }

        # Province aliases: folded phrase -> province code (current names win over old ones).
        by_short = {fold(p.short_name): p.code for p in provinces}
        aliases: dict[str, int] = {}
        for phrase, target in (*_OLD_PROVINCES.items(), *_NICKNAMES.items()):
            aliases[phrase] = by_short[target]  # KeyError = table out of date with the data
        aliases.update(by_short)
        self._current_aliases = frozenset(by_short)
        self._aliases = aliases
        self._aliases_compact = {_compact(k): v for k, v in aliases.items()}
        self._alias_keys = [k for k in aliases if len(k) >= 4]
        self._alias_max_tokens = max(len(k.split()) for k in aliases)

    @staticmethod
    def _fold_names(commune: Commune) -> tuple[str, str]:
        """(folded short name, folded full name), folding only once (start-up time)."""
        full = fold(commune.name)
        prefix = _FOLDED_DIVISIONS.get(commune.division_type, "") + " "
        if full.startswith(prefix):
            return full[len(prefix) :], full
        return fold(commune.short_name), full

    @classmethod
    def load(cls) -> CommuneDirectory:
        """Build the directory from the ``vietnam-provinces`` data (~0.1-0.2 s)."""
        from vietnam_provinces.lookup import PROVINCE_MAPPING, WARD_MAPPING

        provinces = []
        for p in PROVINCE_MAPPING.values():
            if p.division_type.value == "tỉnh":
                name, short = f"Tỉnh {p.name}", p.name
            else:
                name, short = p.name, p.name.removeprefix("Thành phố ").strip()
            provinces.append(Province(code=int(p.code), name=name, short_name=short))
        provinces.sort(key=lambda p: p.code)

        communes = []
        for w in WARD_MAPPING.values():
            division = w.division_type.value
            name = " ".join(w.name.split())  # the source has stray double spaces
            communes.append(
                Commune(
                    code=int(w.code),
                    name=name,
                    province_code=int(w.province_code),
                    division_type=division,
                    short_name=name[len(division) :].strip(),
                )
            )
        _duplicate_names()  # warm the label cache now rather than on the first request
        return cls(provinces, communes)

    # ----------------------------------------------------------------- lookups

    def commune(self, code: int) -> Commune | None:
        return self._communes.get(code)

    def province(self, code: int) -> Province | None:
        return self._provinces.get(code)

    def provinces(self) -> list[Province]:
        """All 34 provinces in official order (by code, north to south)."""
        return list(self._provinces.values())

    def communes_of(self, province_code: int) -> list[Commune]:
        """Communes of a province in the official order of the source list."""
        return list(self._by_province.get(province_code, ()))

    # ------------------------------------------------------------------ search

    def search(
        self, query: str, *, limit: int = 5, province_code: int | None = None
    ) -> list[CommuneMatch]:
        """Best matching communes, best first. Never raises; [] for junk or empty input.

        ``province_code`` restricts the search to one province (e.g. already chosen).
        """
        if not isinstance(query, str) or limit <= 0:
            return []
        if province_code is not None and province_code not in self._provinces:
            return []
        query = query[:_MAX_QUERY_CHARS]
        folded = fold(query)
        if len(folded) < 2:
            return []
        if folded.isascii() and folded.isdigit():
            commune = self._communes.get(int(folded))
            if commune is None or province_code not in (None, commune.province_code):
                return []
            return [self._match(commune.code, 100.0)]

        tokens = folded.split()
        for words in _COUNTRY_WORDS:
            if _ends_with(tokens, words) and len(tokens) > len(words):
                tokens = tokens[: len(tokens) - len(words)]
        if not tokens or tuple(tokens) in _DIVISION_WORDS:
            return []  # only "xã" / "phường" / "đặc khu" typed so far
        index = self._index if province_code is None else self._province_index[province_code]
        # Communes literally named like the whole query ("Phường Lào Cai", "Xã Hòa Bình").
        bare, division, _ = _strip_division(tokens)
        literal = _Interpretation(" ".join(bare), (" ".join(tokens),), division, None)
        if self._province_alias(_strip_province_words_at_start(tokens)) is not None:
            # Only a province was typed: no fuzzy guesses, just same-name communes.
            return self._ranked(index.find(literal, None), limit, query)

        fuzzy_limit = max(2 * limit, 10)
        for interp in self._interpret(tokens):
            named = interp.province_code
            if named is None or province_code not in (None, named):
                continue
            hits = self._province_index[named].find(interp, fuzzy_limit)
            best = max((score for score, _ in hits.values()), default=0.0)
            if interp.province_exact or best >= _DECISIVE:
                # The named province decides; other provinces only keep communes whose name
                # is the whole query (one that happens to end in a province's name).
                for code, value in index.find(literal, None).items():
                    hits[code] = max(hits.get(code, value), value)
                self._apply_division(hits, interp.division or literal.division)
                return self._ranked(hits, limit, query)

        whole = self._reading(tokens, None, tokens)
        hits = index.find(whole, fuzzy_limit)
        self._apply_division(hits, whole.division)
        return self._ranked(hits, limit, query)

    def search_provinces(self, query: str, *, limit: int = 5) -> list[Province]:
        """Provinces matching ``query`` ("lao cai", "tp hcm", "Hà Nội", old names too)."""
        if not isinstance(query, str) or limit <= 0:
            return []
        tokens = _strip_province_words_at_start(fold(query[:_MAX_QUERY_CHARS]).split())
        text = " ".join(tokens)
        if len(text) < 2:
            return []
        ranked: dict[int, float] = {}
        exact = self._aliases.get(text, self._aliases_compact.get(_compact(text)))
        if exact is not None:
            ranked[exact] = 200.0
        if len(text) >= 3:
            for key, score, _ in process.extract(
                text,
                self._alias_keys,
                scorer=fuzz.WRatio,
                processor=None,
                limit=3 * limit,
                score_cutoff=70.0,
            ):
                bonus = 0.5 if key in self._current_aliases else 0.0
                code = self._aliases[key]
                ranked[code] = max(ranked.get(code, 0.0), float(score) + bonus)
        order = sorted(ranked, key=lambda c: (-ranked[c], self._province_rank[c]))
        return [self._provinces[c] for c in order[:limit]]

    # --------------------------------------------------------------- internals

    def _province_alias(self, tokens: Sequence[str]) -> int | None:
        phrase = " ".join(tokens)
        code = self._aliases.get(phrase)
        return code if code is not None else self._aliases_compact.get(_compact(phrase))

    def _interpret(self, tokens: list[str]) -> list[_Interpretation]:
        """Readings of the query that name a province, most trustworthy first."""
        result: list[_Interpretation] = []
        max_k = min(self._alias_max_tokens, len(tokens) - 1)
        # Province at the end: "phuc khanh lao cai", "phuc khanh, tinh lao cai".
        for k in range(max_k, 0, -1):
            code = self._province_alias(tokens[-k:])
            if code is not None:
                rest = tokens[:-k]
                result.append(self._reading(_strip_province_words_at_end(rest), code, rest))
                break
        # Province in front: "lao cai phuc khanh", "tinh lao cai xa phuc khanh".
        head = _strip_province_words_at_start(tokens)
        for k in range(min(self._alias_max_tokens, len(head) - 1), 0, -1):
            code = self._province_alias(head[:k])
            if code is not None:
                result.append(self._reading(head[k:], code, head[k:]))
                break
        # Mistyped province at the end ("phuc khanh lao cia").
        if not result:
            for k in range(min(3, len(tokens) - 1), 0, -1):
                tail = " ".join(tokens[-k:])
                if len(tail) < 5:
                    continue
                best = process.extractOne(
                    tail,
                    self._alias_keys,
                    scorer=fuzz.ratio,
                    processor=None,
                    score_cutoff=_PROVINCE_FUZZY_CUTOFF,
                )
                if best is not None:
                    rest = tokens[:-k]
                    name = _strip_province_words_at_end(rest)
                    reading = self._reading(name, self._aliases[best[0]], rest, exact=False)
                    result.append(reading)
                    break
        # A reading whose commune part is empty or only "xã"/"phường" names no commune.
        return [r for r in result if r.primary and tuple(r.primary.split()) not in _DIVISION_WORDS]

    @staticmethod
    def _reading(
        tokens: list[str], province_code: int | None, raw: list[str], *, exact: bool = True
    ) -> _Interpretation:
        cut = _cut_district(tokens)
        name, division, stripped = _strip_division(cut)
        alternates = {" ".join(cut), " ".join(raw), " ".join(_cut_district(raw))}
        if stripped:
            alternates.add(" ".join(_strip_division(_cut_district(raw))[0]))
        primary = " ".join(name)
        alternates.discard(primary)
        alternates.discard("")
        return _Interpretation(
            primary, tuple(sorted(alternates)), division, province_code, province_exact=exact
        )

    def _apply_division(self, hits: dict[int, tuple[float, float]], division: str | None) -> None:
        if division is None:
            return
        for code, (score, tiebreak) in hits.items():
            if self._communes[code].division_type != division:
                hits[code] = (score - _DIVISION_PENALTY, tiebreak)

    def _ranked(
        self, hits: dict[int, tuple[float, float]], limit: int, query: str
    ) -> list[CommuneMatch]:
        # Among equal scores, a name typed with exactly its diacritics ("Tân Ân" vs "Tân An",
        # both folding to "tan an") comes first; then official province and commune order.
        typed = unicodedata.normalize("NFC", query).lower()

        def key(code: int) -> tuple[float, bool, float, int, int]:
            score, tiebreak = hits[code]
            commune = self._communes[code]
            return (
                -score,
                commune.short_name.lower() not in typed,
                -tiebreak,
                self._province_rank[commune.province_code],
                self._commune_rank[code],
            )

        return [self._match(code, hits[code][0]) for code in sorted(hits, key=key)[:limit]]

    def _match(self, code: int, score: float) -> CommuneMatch:
        commune = self._communes[code]
        return CommuneMatch(
            commune=commune,
            province=self._provinces[commune.province_code],
            score=max(0.0, min(100.0, round(score, 1))),
        )


# --- names inside a sentence ---------------------------------------------------------------
# The official names start with a capitalised division word ("Xã Phúc Khánh", "Tỉnh Lào
# Cai"); in running text, as on the posters and group names, it is lower case: "Công an xã
# Phúc Khánh", "gửi cho: xã Phúc Khánh, tỉnh Lào Cai". Buttons and lists that start with the
# name keep it capitalised.
# division words of communes and provinces, longest first ("thành phố" before "phường")
_LOWER_IN_SENTENCE = ("thành phố ", "đặc khu ", "phường ", "tỉnh ", "xã ")


def in_sentence(name: str) -> str:
    """ "Xã Phúc Khánh" -> "xã Phúc Khánh"; a name without a division word stays as it is.

    >>> in_sentence("Phường Ba Đình"), in_sentence("Tỉnh Lào Cai"), in_sentence("Hà Nội")
    ('phường Ba Đình', 'tỉnh Lào Cai', 'Hà Nội')
    """
    lowered = name.lower()
    for word in _LOWER_IN_SENTENCE:
        if lowered.startswith(word):
            return word + name[len(word):]
    return name


def place_in_sentence(commune: Commune | None, province: Province | None) -> str:
    """ "xã Phúc Khánh, tỉnh Lào Cai" (plain text; escape it for HTML); "?" when unknown."""
    if commune is None:
        return "?"
    parts = [in_sentence(commune.name)] + ([in_sentence(province.name)] if province else [])
    return ", ".join(parts)
