"""Commune directory: data, look-ups and accent-insensitive, typo-tolerant search."""

from __future__ import annotations

import ast
import random
from collections import Counter
from pathlib import Path

import pytest

from bot.domain.communes import CommuneDirectory, CommuneMatch
from bot.domain.text import fold

PHUC_KHANH = 2998  # Xã Phúc Khánh, province 15 = Lào Cai
LAO_CAI = 15


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


def codes(matches: list[CommuneMatch]) -> list[int]:
    return [m.commune.code for m in matches]


# ---------------------------------------------------------------------------- fold()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đặc khu", "dac khu"),
        ("đường Đồng", "duong dong"),
        ("PHÚC KHÁNH", "phuc khanh"),
        ("Xã Phúc Khánh, Lào Cai", "xa phuc khanh lao cai"),
        ("Thừa Thiên – Huế", "thua thien hue"),
        ("Nguyễn Thị Ngọc Ẩn", "nguyen thi ngoc an"),  # stacked marks: circumflex + tone
        ("Hoà / Hòa", "hoa hoa"),  # old and new tone placement
        ("Phu\u0301c Kha\u0301nh", "phuc khanh"),  # already decomposed (NFD) input
        ("  tp.  HCM!!  ", "tp hcm"),
        ("Ea M’Droh", "ea m droh"),
        ("Phường 1 Bảo Lộc", "phuong 1 bao loc"),
        ("a_b\tc\nd", "a b c d"),
        ("", ""),
        ("!!! ...", ""),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


# ---------------------------------------------------------------------------- data


def test_counts(directory: CommuneDirectory) -> None:
    provinces = directory.provinces()
    assert len(provinces) == 34
    communes = [c for p in provinces for c in directory.communes_of(p.code)]
    assert len(communes) == 3321
    assert len({c.code for c in communes}) == 3321
    assert {c.division_type for c in communes} == {"xã", "phường", "đặc khu"}
    assert [p.code for p in provinces] == sorted(p.code for p in provinces)


def test_province_and_commune_fields(directory: CommuneDirectory) -> None:
    lao_cai = directory.province(LAO_CAI)
    assert lao_cai is not None
    assert (lao_cai.name, lao_cai.short_name) == ("Tỉnh Lào Cai", "Lào Cai")
    ha_noi = directory.province(1)
    assert ha_noi is not None
    assert (ha_noi.name, ha_noi.short_name) == ("Thành phố Hà Nội", "Hà Nội")

    commune = directory.commune(PHUC_KHANH)
    assert commune is not None
    assert commune.name == "Xã Phúc Khánh"
    assert commune.short_name == "Phúc Khánh"
    assert commune.province_code == LAO_CAI
    assert commune.division_type == "xã"
    assert commune in directory.communes_of(LAO_CAI)

    dac_khu = [c for c in directory.communes_of(91) if c.division_type == "đặc khu"]
    assert "Đặc khu Phú Quốc" in [c.name for c in dac_khu]
    assert all(c.name == f"Đặc khu {c.short_name}" for c in dac_khu)


def test_unknown_codes(directory: CommuneDirectory) -> None:
    assert directory.commune(-1) is None
    assert directory.commune(99999) is None
    assert directory.province(2) is None
    assert directory.communes_of(2) == []


def test_names_are_clean_and_labels_distinct(directory: CommuneDirectory) -> None:
    communes = [c for p in directory.provinces() for c in directory.communes_of(p.code)]
    for c in communes:
        assert c.name == " ".join(c.name.split()), c.name  # source has stray double spaces
        assert c.name.lower() == f"{c.division_type} {c.short_name}".lower()
    labels = [
        CommuneMatch(c, directory.province(c.province_code), 100.0).label()  # type: ignore[arg-type]
        for c in communes
    ]
    assert len(set(labels)) == len(communes)


# ---------------------------------------------------------------------------- search


@pytest.mark.parametrize(
    "query",
    [
        "phuc khanh",
        "Phúc Khánh",
        "PHÚC KHÁNH",
        "xa phuc khanh lao cai",
        "Xã Phúc Khánh, Lào Cai",
        "phuc khan",  # typo
        "phuk khanh",  # typo
        "phúc khánh lào cai",
        "Xã Phúc Khánh, tỉnh Lào Cai",
        "x. phuc khanh, tinh lao cai",
        "lao cai phuc khanh",
        "Tỉnh Lào Cai, xã Phúc Khánh",
        "phuc khanh lao cia",  # typo in the province
        "phuc khanh yen bai",  # old province, merged into Lào Cai
        "Xã Phúc Khánh, huyện Bảo Yên, tỉnh Lào Cai, Việt Nam",  # old district
        "phuckhanh",
        "2998",
    ],
)
def test_search_phuc_khanh(directory: CommuneDirectory, query: str) -> None:
    matches = directory.search(query)
    assert matches, query
    best = matches[0]
    assert best.commune.code == PHUC_KHANH
    assert best.province.code == LAO_CAI
    assert best.label() == "Xã Phúc Khánh, Lào Cai"
    assert 0 < best.score <= 100


def test_exact_ranks_above_fuzzy(directory: CommuneDirectory) -> None:
    matches = directory.search("phuc khanh", limit=10)
    assert matches[0].score == 100
    assert all(m.score < 100 for m in matches[1:])
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    typo = directory.search("phuc khan")
    assert typo[0].commune.code == PHUC_KHANH
    assert typo[0].score < 100


def test_same_name_in_several_provinces(directory: CommuneDirectory) -> None:
    all_communes = [c for p in directory.provinces() for c in directory.communes_of(p.code)]
    tan_an = [c for c in all_communes if fold(c.short_name) == "tan an"]
    assert len({c.province_code for c in tan_an}) >= 8

    matches = directory.search("tan an", limit=30)
    listed = matches[: len(tan_an)]
    assert {m.commune.code for m in listed} == {c.code for c in tan_an}
    assert all(m.score == 100 for m in listed)
    labels = [m.label() for m in listed]
    assert len(set(labels)) == len(labels)
    assert "Xã Tân An, Nghệ An" in labels
    assert "Phường Tân An, Tây Ninh" in labels
    # Without province words: official province order (north to south).
    order = [m.province.code for m in listed]
    assert order == sorted(order)

    # The province words decide.
    for query, province_code in [
        ("tan an nghe an", 40),
        ("Xã Tân An, tỉnh Nghệ An", 40),
        ("tân an tây ninh", 80),
        ("tan an long an", 80),  # old province Long An is now part of Tây Ninh
        ("phuong tan an tp can tho", 92),
    ]:
        matches = directory.search(query)
        assert fold(matches[0].commune.short_name) == "tan an", query
        assert matches[0].province.code == province_code, query
        assert all(m.province.code == province_code for m in matches), query


def test_typed_diacritics_break_ties(directory: CommuneDirectory) -> None:
    # "Tân Ân" (Cà Mau) and "Tân An" fold to the same key; exact diacritics come first.
    assert directory.search("Tân Ân")[0].label() == "Xã Tân Ân, Cà Mau"
    assert directory.search("Tân Ân")[0].score == 100
    assert directory.search("tan an")[0].commune.short_name == "Tân An"


def test_division_word_prefers_that_type(directory: CommuneDirectory) -> None:
    phuong = directory.search("phuong tan an")
    assert phuong[0].commune.division_type == "phường"
    assert directory.search("xa tan an")[0].commune.division_type == "xã"
    # "Phường Phương Liệt": the name itself starts with a division word.
    assert directory.search("phuong liet")[0].commune.name == "Phường Phương Liệt"
    assert directory.search("Phường Phương Liệt")[0].commune.name == "Phường Phương Liệt"
    assert directory.search("dac khu phu quoc")[0].commune.name == "Đặc khu Phú Quốc"
    assert directory.search("phu quoc")[0].commune.name == "Đặc khu Phú Quốc"


def test_names_that_look_like_provinces(directory: CommuneDirectory) -> None:
    # Commune names equal to (old) province names are still found.
    assert directory.search("phuong lao cai")[0].label() == "Phường Lào Cai, Lào Cai"
    assert directory.search("bac lieu")[0].label() == "Phường Bạc Liêu, Cà Mau"
    assert directory.search("ha giang 1")[0].label() == "Phường Hà Giang 1, Tuyên Quang"
    assert directory.search("son tinh quang ngai")[0].label() == "Xã Sơn Tịnh, Quảng Ngãi"
    # A bare province is not a commune: no fuzzy guesses.
    assert directory.search("thanh pho ha noi") == []
    assert directory.search("tp hcm") == []
    assert [m.commune.name for m in directory.search("tinh lao cai")] in ([], ["Phường Lào Cai"])


def test_more_realistic_queries(directory: CommuneDirectory) -> None:
    cases = {
        "hoan kiem": "Phường Hoàn Kiếm, Hà Nội",
        "hoan kiem ha noi": "Phường Hoàn Kiếm, Hà Nội",
        "p. ben thanh, q.1, tp.hcm": "Phường Bến Thành, Hồ Chí Minh",
        "ben thanh tphcm": "Phường Bến Thành, Hồ Chí Minh",
        "sai gon": "Phường Sài Gòn, Hồ Chí Minh",
        "mdrak": "Xã M’Drắk, Đắk Lắk",
        "chan may lang co": "Xã Chân Mây – Lăng Cô, Huế",
        "quoc tu giam": "Phường Văn Miếu - Quốc Tử Giám, Hà Nội",
        "thi tran phong tho": "Xã Phong Thổ, Lai Châu",
    }
    for query, label in cases.items():
        matches = directory.search(query)
        assert matches and matches[0].label() == label, (query, [m.label() for m in matches])


def test_every_commune_found_by_its_label_and_name(directory: CommuneDirectory) -> None:
    for province in directory.provinces():
        for commune in directory.communes_of(province.code):
            label = f"{commune.name}, {province.short_name}"
            assert directory.search(label)[0].commune.code == commune.code, label
            within = directory.search(commune.short_name, province_code=province.code)
            assert commune.code in codes(within[:2]), label  # 2: Tân Thành / Tân Thạnh


def test_code_lookup(directory: CommuneDirectory) -> None:
    assert codes(directory.search("2998")) == [PHUC_KHANH]
    assert codes(directory.search(" 02998 ")) == [PHUC_KHANH]
    assert directory.search("2998", province_code=1) == []
    assert directory.search("99999") == []
    assert directory.search("0") == []


def test_province_filter(directory: CommuneDirectory) -> None:
    matches = directory.search("tan an", province_code=80)
    assert matches[0].commune.code == 27712
    assert all(m.province.code == 80 for m in matches)
    assert PHUC_KHANH not in codes(directory.search("phuc khanh", province_code=1))
    assert directory.search("phuc khanh", province_code=12345) == []


def test_limit(directory: CommuneDirectory) -> None:
    assert len(directory.search("tan an")) == 5
    assert len(directory.search("tan an", limit=2)) == 2
    assert directory.search("tan an", limit=0) == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        " ",
        "x",
        "đ",
        "!!!",
        "...",
        "😀😀😀",
        "²²",  # Unicode digits that int() rejects
        "٢٩٩٨",  # Arabic-Indic digits
        "qwertyuiop",
        "zzzz",
        "xa",
        "phường",
        "Đặc khu",
        "a" * 10_000,
    ],
)
def test_garbage_returns_nothing(directory: CommuneDirectory, query: str) -> None:
    assert directory.search(query) == []


def test_wrong_types_do_not_raise(directory: CommuneDirectory) -> None:
    assert directory.search(None) == []  # type: ignore[arg-type]
    assert directory.search_provinces(None) == []  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- provinces


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("lao cai", 15),
        ("Lào Cai", 15),
        ("tinh lao cai", 15),
        ("lao cia", 15),
        ("yen bai", 15),  # merged into Lào Cai
        ("tp hcm", 79),
        ("TP.HCM", 79),
        ("tphcm", 79),
        ("ho chi minh", 79),
        ("Thành phố Hồ Chí Minh", 79),
        ("sai gon", 79),
        ("ha noi", 1),
        ("Hà Nội", 1),
        ("hanoi", 1),
        ("hue", 46),
        ("da nang", 48),
        ("daklak", 66),
        ("can tho", 92),
    ],
)
def test_search_provinces(directory: CommuneDirectory, query: str, code: int) -> None:
    found = directory.search_provinces(query)
    assert found and found[0].code == code


def test_search_provinces_garbage_and_limit(directory: CommuneDirectory) -> None:
    for query in ["", "x", "!!!", "qwertyuiop", "tinh", "thanh pho"]:
        assert directory.search_provinces(query) == []
    assert len(directory.search_provinces("quang", limit=3)) == 3
    assert directory.search_provinces("lao cai", limit=0) == []


# ---------------------------------------------------------------------------- layering


def test_domain_does_not_import_telegram() -> None:
    """bot/domain is the pure domain layer and bot/conversation the channel-neutral resident
    conversation: no Telegram imports in any of their modules."""
    root = Path(__file__).resolve().parents[1] / "bot"
    offenders = []
    paths = sorted((root / "domain").rglob("*.py")) + sorted((root / "conversation").rglob("*.py"))
    assert len(paths) > 25
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "telegram"]
    assert offenders == []


def test_division_type_counts(directory: CommuneDirectory) -> None:
    communes = [c for p in directory.provinces() for c in directory.communes_of(p.code)]
    assert Counter(c.division_type for c in communes) == {"xã": 2621, "phường": 687, "đặc khu": 13}


def test_random_input_never_raises(directory: CommuneDirectory) -> None:
    rng = random.Random(2025)
    alphabet = "aăâbcdđeêghiklmnoôơpqrstuưvxyÀÁẢÃẠàáảãạĐđ0123456789 ,.-–’'/()#@\t\n😀²"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for match in directory.search(text, limit=3):
            assert 0 <= match.score <= 100
        directory.search(text, province_code=15)
        directory.search_provinces(text)
