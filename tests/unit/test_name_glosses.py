"""A Chinese question's names glossed with the pinyin spelling its English sources use (贺青（He Qing）)."""

from chatbot.embeddings import common_english_words
from chatbot.names import glossed, pinyin_glosses

COMMON = common_english_words()
SOURCES = [
    "Chief Engineer Lin Mei leads the leak-detection programme of the Harbor City Water Board",
    "Hengda Steel Group, chaired by Zhang Wei, opened a plant in Qingchuan",
    "China Taiping Insurance built the Taiping insurance model; Guotai Junan Securities runs Lingxi",
]


def test_names_written_in_pinyin_are_found_longest_first():
    assert pinyin_glosses("林梅负责哪个项目？", SOURCES, COMMON) == [("林梅", "Lin Mei")]
    assert pinyin_glosses("恒达钢铁集团的董事长张伟在青川做了什么？", SOURCES, COMMON) == [
        ("恒达", "Hengda"), ("张伟", "Zhang Wei"), ("青川", "Qingchuan")]
    assert pinyin_glosses("国泰君安推出了什么？", SOURCES, COMMON) == [("国泰君安", "Guotai Junan")]


def test_half_a_name_and_english_words_do_not_match():
    # 中国太平: 国太 spells "guotai", half of "Guotai Junan"; only 太平 (Taiping) is a whole name.
    assert pinyin_glosses("中国太平打造了什么模型？", SOURCES, COMMON) == [("太平", "Taiping")]
    assert pinyin_glosses("水务局有多少员工？", SOURCES, COMMON) == []
    assert pinyin_glosses("Who leads the programme?", SOURCES, COMMON) == []
    assert pinyin_glosses("林梅是谁？", ["The documents name nobody here."], COMMON) == []


def test_the_gloss_follows_the_first_occurrence_once():
    assert glossed("林梅负责哪个项目？林梅的副手呢？", [("林梅", "Lin Mei")]) == "林梅（Lin Mei）负责哪个项目？林梅的副手呢？"
    assert glossed("林梅（Lin Mei）是谁？", [("林梅", "Lin Mei")]) == "林梅（Lin Mei）是谁？"

