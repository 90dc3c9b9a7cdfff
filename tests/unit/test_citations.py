"""The answer checks: markers, verification, refusal detection, question intent, false premises, translation safety,
clauses. Fixtures are written for these tests (a water board, a rowing club), not taken from the corpus."""

import numpy as np

from chatbot.clauses import split_clauses
from chatbot.markers import attach, parse_answer
from chatbot.premise import attribution_conflicts, premise_conflicts
from chatbot.query import analyse_question
from chatbot.question_intent import answers_question_type, asks_for_several, expected_answer_type
from chatbot.refusal_detection import is_refusal
from chatbot.translation_safety import (
    names_preserved,
    protect_for_translation,
    restore_translation,
    translation_keeps_facts,
)
from chatbot.verification import Passage, check_facts, verify_citations
from tests.fakes import FakeEmbedder

P1 = Passage(1, "d", 0, 80, "China Taiping Insurance is building 1.05 million high-quality insurance data instructions.")
P2 = Passage(2, "d", 81, 160, "Shanghai Electric is establishing a high-quality computing power supply.")
P3 = Passage(3, "d", 161, 260, "Representatives from 11 municipal state-owned enterprises jointly launched the initiative.")
P4 = Passage(4, "d", 261, 380, "It built a factory matrix composed of 49 companies and eight industry internet platforms.")


class FakeSimilarity:
    def __init__(self) -> None:
        self.e = FakeEmbedder("use")

    def __call__(self, claims, passages):
        return self.e.embed_documents(claims) @ self.e.embed_documents(passages).T


def verify(answer, question="q", passages=(P1, P2, P3, P4)):
    return verify_citations(answer, list(passages), analyse_question(question), FakeSimilarity())


# Markers -----------------------------------------------------------------------------------------------------


def test_markers_are_parsed_per_sentence():
    parsed = parse_answer("Eleven enterprises launched it [3]. Taiping built 1.05 million instructions [1][2].")
    assert [c.markers for c in parsed] == [[3], [1, 2]]
    assert parsed[0].text == "Eleven enterprises launched it."
    assert parse_answer("它由11家企业发起[3]。")[0].markers == [3]
    assert parse_answer("Both [1, 2].")[0].markers == [1, 2]


def test_a_chinese_sentence_ends_with_chinese_punctuation_after_its_marker():
    assert attach("共有11家企业发起了倡议.", "[1]") == "共有11家企业发起了倡议[1]。"
    assert attach("漏损检测项目由Lin Mei负责", "[2]") == "漏损检测项目由Lin Mei负责[2]。"
    assert attach("Eleven enterprises launched it.", "[1]") == "Eleven enterprises launched it [1]."


# Verification ------------------------------------------------------------------------------------------------


def test_supported_sentence_keeps_its_citation_and_markers_are_renumbered():
    v = verify("Representatives from 11 municipal enterprises jointly launched the initiative [3].")
    assert not v.refused and v.unsupported == []
    assert v.answer == "Representatives from 11 municipal enterprises jointly launched the initiative [1]."
    assert [(p.n, p.start) for p in v.passages] == [(1, 161)]


def test_sentence_cited_to_the_wrong_passage_is_reattributed():
    v = verify("China Taiping Insurance is building 1.05 million insurance data instructions [2].")
    assert v.sentences[0].reattributed and v.sentences[0].cited == [1]
    assert v.passages[0].text == P1.text and v.answer.endswith("[1].")


def test_unsupported_sentence_is_removed_and_listed():
    v = verify("China Taiping is building 1.05 million instructions [1]. The budget is 3 billion yuan [1].")
    assert v.unsupported == ["The budget is 3 billion yuan."]
    assert "3 billion" not in v.answer and v.answer.startswith("China Taiping")


def test_nothing_supported_means_refusal():
    v = verify("Paris is the capital of France [1].")
    assert v.refused and v.answer == "" and v.unsupported == ["Paris is the capital of France."]


def test_number_and_name_mismatches_are_detected():
    assert "number" in check_facts("Taiping built 1.5 million instructions.", [P1.text], analyse_question("q"))
    assert check_facts("Taiping built 1,050,000 instructions.", [P1.text], analyse_question("q")) == ""
    assert check_facts("太平构建了105万条指令。", [P1.text], analyse_question("q")) == ""
    assert "name" in check_facts("Ping An Insurance built 1.05 million instructions.", [P1.text], analyse_question("q"))


def test_a_quoted_term_must_be_in_the_passage_whatever_punctuation_the_quote_closes_over():
    passage = "The mayor asked the districts to play the “leader effect” and the “multiplier effect”."
    assert check_facts("The mayor named the “multiplier effect.”", [passage], analyse_question("q")) == ""
    assert check_facts("The mayor named the “leader effect,” and more.", [passage], analyse_question("q")) == ""
    assert "quoted" in check_facts("The mayor named the “network effect.”", [passage], analyse_question("q"))


def test_a_number_that_counts_something_else_in_the_passage_does_not_support_the_claim():
    why = check_facts("China Taiping employs 49 people.", [P4.text], analyse_question("How many people does China Taiping employ?"))
    assert "describes something else" in why
    assert check_facts("The factory matrix has 49 companies.", [P4.text], analyse_question("q")) == ""
    assert check_facts("Eleven SOEs launched it.", [P3.text], analyse_question("q")) == ""  # an acronym of the passage's words
    v = verify("China Taiping employs 49 people [4].", "How many people does China Taiping employ?")
    assert v.refused


def test_a_false_premise_number_may_be_named_when_negated():
    q = "Why did 20 municipal SOEs launch the initiative?"
    v = verify("It was 11 municipal state-owned enterprises, not 20, that jointly launched the initiative [3].", q)
    assert not v.refused
    v = verify("20 municipal state-owned enterprises jointly launched the initiative [3].", q)
    assert v.refused


def test_a_clause_is_cited_and_widened_to_its_subject_only_when_the_claim_needs_the_subject():
    sentence = ("The Harbor City Water Board opened the Eastbank plant in 2021, "
                "with a capacity of 400,000 cubic metres a day.")
    clause_start = sentence.index("with a capacity")
    clause = Passage(1, "d", 100 + clause_start, 100 + len(sentence) - 1, sentence[clause_start:-1],
                     context_start=100, context_end=100 + len(sentence), context_text=sentence,
                     prompt_text="The Harbor City Water Board … " + sentence[clause_start:-1],
                     head_start=100, head_end=100 + len("The Harbor City Water Board"),
                     head_text="The Harbor City Water Board")
    v = verify("The plant has a capacity of 400,000 cubic metres a day [1].", passages=[clause])
    assert not v.refused and v.passages[0].start == clause.start and v.passages[0].text.startswith("with a capacity")
    v = verify("The Harbor City Water Board's plant has a capacity of 400,000 cubic metres a day [1].",
               passages=[clause])
    assert not v.refused and v.passages[0].start == 100
    assert v.passages[0].text == sentence[: -1] and v.passages[0].context_start == 100


# Refusal detection and question intent -----------------------------------------------------------------------


def test_refusals_and_answer_types_are_recognised():
    assert is_refusal("The documents do not say.") and is_refusal("文件中没有相关信息。")
    assert not is_refusal("Eleven enterprises launched it [1].")
    assert not answers_question_type(analyse_question("How much did it cost?"), "Shanghai Electric builds computing power [1].")
    assert answers_question_type(analyse_question("多少家企业参与？"), "共有11家企业参与[1]。")
    assert answers_question_type(analyse_question("Who launched it?"), "He Qing launched it [1].")


def test_question_intent_is_read_from_general_question_forms():
    assert expected_answer_type("How many districts joined?") == "quantity"
    assert expected_answer_type("When did the plant open?") == "date"
    assert expected_answer_type("东岸水厂是哪一年建成的？") == "date"
    assert expected_answer_type("Who leads the programme?") == "person"
    assert expected_answer_type("Is the bridge longer than 600 metres?") == "yesno"
    assert expected_answer_type("大桥的长度超过600米吗？") == "yesno"
    assert expected_answer_type("Which is older, the rowing club or the university?") == "choice"
    assert expected_answer_type("Which bank financed the plant?") == "name"
    assert asks_for_several("Which three districts joined?") and asks_for_several("哪些企业参与了？")
    assert not asks_for_several("Who leads the programme?")


def test_a_choice_question_is_answered_by_naming_an_option():
    q = analyse_question("Which is older, the rowing club or the university?")
    assert q.options == ("rowing club", "university")
    assert answers_question_type(q, "The rowing club is older [1].")
    assert not answers_question_type(q, "The museum opened in 1951 [1].")


def test_a_yes_no_answer_may_use_the_questions_own_words():
    q = analyse_question("Did China Taiping increase overall labor productivity?")
    p = Passage(1, "d", 0, 90, "China Taiping increased overall labor productivity by more than 30%.")
    v = verify_citations("Yes, China Taiping increased overall labor productivity [1].", [p], q, FakeSimilarity())
    assert not v.refused


def test_which_company_questions_need_a_name_the_question_did_not_give():
    q = analyse_question("Which chip supplier provides the hardware for Shanghai Electric's computing power bases?")
    assert not answers_question_type(q, "Shanghai Electric is establishing a computing power supply [1].")
    assert answers_question_type(q, "Shanghai Electric buys its chips from Huawei [1].")


def test_a_sentence_that_only_restates_the_question_is_not_an_answer():
    q = analyse_question("What did Cheng Peng say at the AI+ forum?")
    p = Passage(1, "d", 0, 90, "Cheng Peng, Secretary of the Party Committee, attended the AI+ forum and spoke.")
    v = verify_citations("Cheng Peng said at the AI+ forum [1].", [p], q, FakeSimilarity())
    assert v.refused and "restates" in v.sentences[0].reason


def test_a_bare_fact_answer_is_supported_by_the_passage_that_states_it():
    v = verify("11 [3].", "How many enterprises launched it?")
    assert not v.refused and v.answer == "11 [1]."


def test_similarity_matrix_shape_is_claims_by_passages():
    sims = FakeSimilarity()(["a b", "c"], ["a", "b", "c"])
    assert isinstance(sims, np.ndarray) and sims.shape == (2, 3)


# False premises ----------------------------------------------------------------------------------------------


def _passages(*texts):
    return [Passage(i, "d", 0, len(t), t) for i, t in enumerate(texts, 1)]


def test_a_premise_is_corrected_only_when_both_numbers_count_the_same_thing():
    ps = _passages("Representatives from 11 municipal state-owned enterprises jointly launched the initiative.",
                   "It created eight industry internet platforms in 2023.")
    conflicts = premise_conflicts(analyse_question("Why did 20 municipal state-owned enterprises launch it?"), ps)
    assert [(c.asked, c.stated, c.passage) for c in conflicts] == [("20", "11", 1)]
    assert premise_conflicts(analyse_question("What was the group's profit in 2022?"), ps) == []
    assert premise_conflicts(analyse_question("Which two goals did the director name?"), ps) == []
    # A number the passage states about the same thing is no premise at all.
    assert premise_conflicts(analyse_question("Why were eight internet platforms created?"), ps) == []


class FakeWordSimilarity:
    """A fake of the multilingual cosine for single words: synonyms given here score 0.93, the rest 0.27."""

    SYNONYMS = {frozenset({"firms", "companies"})}

    def __init__(self):
        self.calls = []

    def __call__(self, claims, passages):
        self.calls.append((claims, passages))
        return np.array([[0.93 if frozenset({c, p}) in self.SYNONYMS else 0.27 for p in passages] for c in claims])


def test_a_premise_counting_the_same_thing_in_other_words_is_corrected():
    ps = _passages("The leak-detection programme was joined by 12 companies in the first year.")
    sim = FakeWordSimilarity()
    conflicts = premise_conflicts(analyse_question("Why did 30 firms join the leak-detection programme?"), ps, sim)
    assert [(c.asked, c.stated) for c in conflicts] == [("30", "12")]
    assert (["firms"], ["companies"]) in sim.calls
    # What the passage counts is something else: no premise to correct.
    assert premise_conflicts(analyse_question("Why did 30 people join the leak-detection programme?"), ps, sim) == []


def test_a_number_stated_about_something_else_is_still_a_false_premise():
    ps = _passages("Representatives from 11 municipal state-owned enterprises jointly launched the initiative.",
                   "It built a factory matrix composed of 49 companies.")
    conflicts = premise_conflicts(analyse_question("Why did 49 municipal state-owned enterprises launch it?"), ps)
    assert [(c.asked, c.stated) for c in conflicts] == [("49", "11")]


# Translation safety ------------------------------------------------------------------------------------------


def test_translated_names_must_spell_the_english_name():
    common = frozenset({"china", "insurance", "securities", "he", "qing", "lin", "mei", "shanghai", "electric"})
    en = "Guotai Junan Securities promotes the All in AI strategy [1]."
    assert names_preserved(en, "国泰君安证券推进All in AI战略[1]。", common)
    assert not names_preserved(en, "国投中粮证券推进All in AI战略[1]。", common)
    # A two-syllable personal name whose first syllable is also an English pronoun ("He", "It").
    assert names_preserved("He Qing launched it [1].", "贺青发布了该倡议[1]。", common)
    assert not names_preserved("He Qing launched it [1].", "他青发布了该倡议[1]。", common)
    assert names_preserved("Lin Mei leads it [1].", "林梅负责该项目[1]。", common)
    assert names_preserved("China Taiping Insurance built it [1].", "中国太平保险构建了它[1]。", common)


def test_translation_placeholders_protect_names_numbers_and_quotes():
    common = frozenset({"china", "insurance", "securities", "strategy", "the", "has", "built"})
    text, slots = protect_for_translation("Guotai Junan Securities promotes the “All in AI” strategy [1].", common)
    assert "Guotai" not in text and "All in AI" not in text and "[1]" in text
    assert set(slots.values()) == {"Guotai Junan Securities", "All in AI"}
    text, slots = protect_for_translation("China Taiping Insurance has built 1.05 million instructions [1].", common)
    assert "105万" in slots.values()
    keys = sorted(slots)
    restored = restore_translation(f"{keys[0]}构建了{keys[1]}条指令[1]。", slots)
    assert restored is not None and "105万" in restored
    assert restore_translation(f"{keys[0]}构建了指令[1]。", slots) is None  # a lost placeholder


def test_a_translation_that_drops_a_more_than_or_a_marker_is_rejected():
    common = frozenset({"labor", "productivity"})
    en = "Labor productivity rose by more than 30% [1]."
    assert translation_keeps_facts(en, "劳动生产率提高了30%以上[1]。", common)
    assert not translation_keeps_facts(en, "劳动生产率提高了30%[1]。", common)
    assert not translation_keeps_facts(en, "劳动生产率提高了30%以上。", common)


# Clauses -----------------------------------------------------------------------------------------------------


def test_a_long_sentence_splits_into_clauses_and_list_items_stay_together():
    s = ("The Water Board is upgrading its network in three districts, replacing 40 kilometres of old pipes, "
         "installing 12,000 smart meters in homes, shops, and schools, and cutting water losses by more than 12%.")
    clauses = [s[c.start : c.end] for c in split_clauses(s)]
    assert clauses == [
        "The Water Board is upgrading its network in three districts",
        "replacing 40 kilometres of old pipes",
        "installing 12,000 smart meters in homes, shops, and schools",
        "and cutting water losses by more than 12%.",
    ]
    assert [c.start for c in split_clauses(s, 100)][0] == 100


def test_commas_inside_quotes_do_not_split_and_chinese_splits_at_its_own_commas():
    s = "The plan vows to “clean the river, plant trees, and open parks”, and the city will fund it with 3 million dollars."
    assert len(split_clauses(s)) == 2
    zh = "东岸水厂于2021年建成投产，每天的处理能力为40万立方米，由总工程师林梅负责运营。"
    assert [zh[c.start : c.end] for c in split_clauses(zh)] == [
        "东岸水厂于2021年建成投产", "每天的处理能力为40万立方米", "由总工程师林梅负责运营。"]


def test_a_how_many_answer_must_count_what_the_question_asks_about():
    from chatbot.question_intent import addresses_focus

    def sim(a, b):  # "people" and "volunteers" are close; "people" and "companies" are not
        close = {("people", "volunteers"): 0.5, ("people", "companies"): 0.2}
        return np.array([[close.get((q, x.split()[0]), 0.0) for x in b] for q in a])

    how_many = analyse_question("How many people keep the railway running?")
    assert addresses_focus(how_many, "About 260 volunteers run it [1].", ["run by about 260 volunteers"], sim)
    assert not addresses_focus(how_many, "49 companies run it [1].", ["composed of 49 companies"], sim)
    assert addresses_focus(analyse_question("How many districts joined the programme?"),
                           "Five districts joined it [1].", ["Five districts joined the programme"], sim)
    # "Which <noun>" is not judged by its noun: a correct answer paraphrases it as often as a wrong one lacks it.
    assert addresses_focus(analyse_question("Which two regulatory procedures did it complete first?"),
                           "It completed algorithm filing and service registration [1].",
                           ["the first to complete algorithm filing and service registration"], sim)


def test_an_answer_whose_sources_never_mention_the_person_asked_about_is_not_an_answer():
    from chatbot.verification import question_names_grounded

    known = "Lin Mei, the chief engineer, and Tom Wu attended. At the forum, Lin Mei said losses fell."
    forum = Passage(1, "d", 60, 90, "Lin Mei said losses fell", context_text="At the forum, Lin Mei said losses fell.")
    q = analyse_question("What did Tom Wu say at the forum?")
    assert not question_names_grounded(q, "Lin Mei said losses fell [1].", [forum], known)
    assert question_names_grounded(analyse_question("What did Lin Mei say at the forum?"), "Losses fell [1].",
                                   [forum], known)
    # Another sentence may answer a question that mentions someone only as its occasion.
    assert question_names_grounded(q, "Losses fell [1].", [forum], known)
    assert question_names_grounded(q, "It was Lin Mei, not Tom Wu, who said losses fell [1].", [forum], known)
    # A name the documents never mention cannot be checked here (the model's refusal or the verifier decides).
    assert question_names_grounded(analyse_question("What did Ann Lee say?"), "Losses fell [1].", [forum], known)


def test_a_yes_no_comparison_with_the_questions_number_is_checked_against_the_passages_number():
    p = ["It is 640 metres long and carries two traffic lanes."]
    q = analyse_question("Is the bridge longer than 600 metres?")
    assert check_facts("Yes, the bridge is longer than 600 metres.", p, q) == ""
    assert "600" in check_facts("Yes, the bridge is shorter than 600 metres.", p, analyse_question("Is the bridge shorter than 600 metres?"))
    assert "700" in check_facts("Yes, the bridge is longer than 700 metres.", p, analyse_question("Is the bridge longer than 700 metres?"))


def test_an_answer_about_the_asked_person_must_cite_a_sentence_that_mentions_them():
    from chatbot.verification import question_names_grounded

    known = "Lin Mei, the chief engineer, and Tom Wu attended. Harbor Bank regards water as its top project."
    bank = Passage(1, "d", 60, 100, "regards water as its top project",
                   context_text="Harbor Bank regards water as its top project.")
    q = analyse_question("What did Tom Wu say at the forum?")
    assert not question_names_grounded(q, "Tom Wu said water is the top project [1].", [bank], known)


def test_an_answer_citing_another_documents_fact_for_the_asked_thing_is_not_an_answer():
    from chatbot.verification import question_names_in_cited_documents

    library = "The Riverton Public Library reopened in 2019. The renovation cost 14 million dollars."
    cost = Passage(1, "library", 47, 84, "The renovation cost 14 million dollars", context_text=library[47:])
    q = analyse_question("How much did the renovation of the Harlow Bridge cost?")
    docs = {"library": library}
    assert not question_names_in_cited_documents(q, "The Harlow Bridge renovation cost 14 million dollars [1].",
                                                 [cost], docs.get)
    q = analyse_question("How much did the renovation of the Riverton Public Library cost?")
    assert question_names_in_cited_documents(q, "The Riverton Public Library renovation cost 14 million dollars [1].",
                                             [cost], docs.get)
    # The user abbreviates what the document spells out: the run's other words are enough.
    board = ("The Riverton Municipal Board of Education approved the plan. The renovation cost 14 million "
             "dollars.")
    plan = Passage(1, "board", 59, 98, "The renovation cost 14 million dollars", context_text=board[59:])
    q = analyse_question("How much did the Riverton Municipal BOE renovation cost?")
    assert question_names_in_cited_documents(q, "The Riverton Municipal BOE renovation cost 14 million dollars [1].",
                                             [plan], {"board": board}.get)


def test_a_premise_about_the_same_counted_thing_is_found_when_its_subject_is_in_another_sentence():
    ps = _passages("It runs for 24 kilometres through 17 stations, 11 of them underground.",
                   "Since 2012 it has run a breeding programme, in which 14 cubs have been born.")
    conflicts = premise_conflicts(analyse_question("Why does Line 3 of the metro have 25 stations?"), ps)
    assert [(c.asked, c.stated) for c in conflicts] == [("25", "17")]
    conflicts = premise_conflicts(analyse_question("How did the zoo breed 30 red panda cubs?"), ps)
    assert [(c.asked, c.stated) for c in conflicts] == [("30", "14")]


# Recovering answers the checks used to refuse (issue 9) --------------------------------------------------------

PARK = ("The Corven Wind Park is an offshore wind farm 30 kilometres off the coast, operated by Nordwind. "
        "Its first turbine, named \"Ada\", was raised in 2018. It has 44 turbines, for a total of 352 megawatts.")


def test_a_cited_sentence_naming_nobody_speaks_of_what_the_sentence_before_it_names():
    from chatbot.verification import question_names_grounded

    at = PARK.index("It has")
    turbines = Passage(1, "park", at, len(PARK), PARK[at:], context_start=at, context_end=len(PARK),
                       context_text=PARK[at:])
    q = analyse_question("What is the total capacity of the Corven Wind Park?")
    answer = "The Corven Wind Park has a total of 352 megawatts [1]."
    assert question_names_grounded(q, answer, [turbines], PARK, {"park": PARK}.get)
    # The sentence must say something of what is asked: vehicles crossing the bridge are not its renovation's cost.
    bridge = "The Harlow Bridge opened in 1932. About 38,000 vehicles cross the bridge on an average weekday."
    at = bridge.index("About")
    cited = Passage(1, "b", at, len(bridge), bridge[at:], context_start=at, context_end=len(bridge),
                    context_text=bridge[at:])
    assert not question_names_grounded(analyse_question("How much did the renovation of the Harlow Bridge cost?"),
                                       "The renovation of the Harlow Bridge cost about 38,000 vehicles [1].",
                                       [cited], bridge, {"b": bridge}.get)
    # Without the document the sentence before cannot be read: the name must be in the cited sentence.
    assert not question_names_grounded(q, answer, [turbines], PARK)
    # A name the sentence before does not give is not what "It" refers to.
    other = "The Harlow Bridge opened in 1932. It has 44 turbines, for a total of 352 megawatts."
    at = other.index("It has")
    cited = Passage(1, "o", at, len(other), other[at:], context_start=at, context_end=len(other),
                    context_text=other[at:])
    assert not question_names_grounded(q, answer, [cited], PARK + " " + other, {"o": other}.get)
    # A cited sentence about someone else stays an answer about them, whatever came before it.
    text = "Lin Mei and Tom Wu attended. Lin Mei said losses fell."
    said = Passage(1, "d", 29, 54, text[29:], context_start=29, context_end=54, context_text=text[29:])
    assert not question_names_grounded(analyse_question("What did Tom Wu say?"), "Tom Wu said losses fell [1].",
                                       [said], text, {"d": text}.get)


def test_an_english_name_in_pinyin_is_found_in_a_chinese_document():
    from chatbot.verification import question_names_in_cited_documents

    doc = "青川水电站位于青川河中游，于2009年建成投产，装机容量为120万千瓦。"
    p = Passage(1, "hydro", 0, len(doc), doc, context_text=doc)
    q = analyse_question("What is the installed capacity of the Qingchuan hydropower station?")
    answer = "The Qingchuan hydropower station has an installed capacity of 1.2 million kilowatts [1]."
    assert question_names_in_cited_documents(q, answer, [p], {"hydro": doc}.get)
    q = analyse_question("What is the installed capacity of the Harlow hydropower station?")
    assert not question_names_in_cited_documents(q, answer.replace("Qingchuan", "Harlow"), [p], {"hydro": doc}.get)


def test_a_comparison_answer_cites_a_passage_for_each_option_it_names():
    club = Passage(1, "club", 0, 60, "The Maplewood Rowing Club, founded in 1887, has 340 members.")
    uni_title = Passage(2, "uni", 0, 40, "Westbrook University expands its campus")
    uni = Passage(3, "uni", 41, 100, "Westbrook University was founded in 1891 and has 18,000 students.")
    q = "Which is older, the Maplewood Rowing Club or Westbrook University?"
    v = verify("The Maplewood Rowing Club is older than Westbrook University [1].", q, [club, uni_title, uni])
    assert not v.refused
    assert v.answer.endswith("[1][2].") and [p.doc_id for p in v.passages] == ["club", "uni"]
    assert "1891" in v.passages[1].text  # the passage stating a figure, not the headline
    # Other questions keep the citations the claim earned.
    v = verify("The Maplewood Rowing Club has 340 members [1].", "How many members does the Maplewood Rowing Club "
               "have, compared with Westbrook University?", [club, uni_title, uni])
    assert [p.doc_id for p in v.passages] == ["club"]


def test_a_sentence_joining_two_passages_facts_is_cited_to_both():
    bridge = Passage(1, "b", 0, 60, "The Harlow Bridge was opened in 1932 and designed by Tomas Berg.")
    chess = Passage(2, "c", 0, 50, "The Marlow Chess Club was founded in 1902 and has 85 members.")
    q = "Was the Harlow Bridge opened before or after the Marlow Chess Club was founded?"
    v = verify("The Harlow Bridge was opened in 1932, after the Marlow Chess Club was founded in 1902.", q,
               [bridge, chess])
    assert not v.refused and v.answer.endswith("[1][2].")
    # The same sentence with its before/after contradicting its own years is removed.
    v = verify("The Harlow Bridge was opened in 1932, before the Marlow Chess Club was founded in 1902 [1][2].", q,
               [bridge, chess])
    assert v.refused and "contradicts" in v.sentences[0].reason


def test_a_year_in_the_question_is_stated_only_where_the_documents_say_it_about_the_same_thing():
    ps = _passages("On July 6th, at the closing ceremony of the 2024 World Harbour Conference, the board launched "
                   "the plan.", "The board's reform programme (2023-2025) promotes the upgrading of industries.")
    q = analyse_question("The plan was launched at the closing ceremony of the 2023 World Harbour Conference; who "
                         "attended?")
    assert [(c.asked, c.stated) for c in premise_conflicts(q, ps)] == [("2023", "2024")]
    # A year the documents do not tie to anything asked is not a premise to correct.
    assert premise_conflicts(analyse_question("What was the board's profit in 2022?"), ps) == []
    assert premise_conflicts(analyse_question("What does the reform programme of 2023 promote?"), ps) == []



def test_a_doubled_consonant_the_stemmer_leaves_still_matches_its_word():
    """"running" stems to "runn": it must still meet "run", or a correct answer is refused (the cited sentence
    "… is run by about 40 members" did not speak of "keep … running")."""
    from chatbot.keyword import tokenize
    from chatbot.verification import question_names_grounded, word_coverage

    assert word_coverage(set(tokenize("running stopped planned")), "they run, stop and plan") == 1.0
    assert word_coverage(set(tokenize("falling")), "they fell") == 0.0  # no undoubling of l, s, z
    text = "The Ashby Canal Trust restores old narrowboats. The boats are run by about 40 members."
    at = text.index("The boats")
    cited = Passage(1, "canal", at, len(text), text[at:], context_start=at, context_end=len(text),
                    context_text=text[at:])
    q = analyse_question("How many people keep the Ashby Canal boats running?")
    assert question_names_grounded(q, "About 40 members keep the Ashby Canal boats running [1].", [cited], text,
                                   {"canal": text}.get)


def _sentence_of(text: str, sentence: str) -> Passage:
    """A cited passage that is one whole sentence of the document `text`."""
    at = text.index(sentence)
    return Passage(1, "d", at, at + len(sentence), sentence, context_start=at, context_end=at + len(sentence),
                   context_text=sentence)


def test_a_chinese_question_about_a_named_subject_needs_it_in_what_the_answer_cites():
    """国泰君安 is "Guotai Junan" in the English documents (its pinyin): an answer citing a sentence about another
    subject, or naming nobody after a sentence about someone else, answers with that subject's fact."""
    from chatbot.verification import chinese_question_names_grounded

    text = ("Guotai Junan Securities is promoting the All in AI strategy. It launched the Lingxi assistant. "
            "The Municipal SASAC set up three mother funds with a total scale of 100 billion yuan.")

    funds = _sentence_of(text, "The Municipal SASAC set up three mother funds with a total scale of 100 billion yuan.")
    strategy = _sentence_of(text, "Guotai Junan Securities is promoting the All in AI strategy.")
    lingxi = _sentence_of(text, "It launched the Lingxi assistant.")
    q = analyse_question("国泰君安在人工智能方面投入了多少资金？")
    assert not chinese_question_names_grounded(q, [funds], text, {"d": text}.get)
    assert chinese_question_names_grounded(q, [strategy], text, {"d": text}.get)
    assert chinese_question_names_grounded(q, [lingxi], text, {"d": text}.get)  # "It" follows the name
    # A question that names no subject of the documents, and English questions, are not concerned.
    assert chinese_question_names_grounded(analyse_question("哪家企业设立了母基金？"), [funds], text)
    assert chinese_question_names_grounded(analyse_question("How much did Guotai Junan invest?"), [funds], text)


def test_a_one_word_name_counts_when_few_chunks_use_it():
    """中国太平 is "China Taiping": "Taiping" is the name (one pinyin word); "China" is not pinyin. Its
    characters also read "Guotai" (国太), another company's name: either reading in the cited sentence will do."""
    from chatbot.verification import chinese_question_names_grounded

    text = ("China Taiping Insurance built 11 digital labour positions. Guotai Junan Securities promotes AI. "
            "Shanghai factories include 3 lighthouse factories.")

    taiping = _sentence_of(text, "China Taiping Insurance built 11 digital labour positions.")
    factories = _sentence_of(text, "Shanghai factories include 3 lighthouse factories.")
    rare = lambda w: w != "Shanghai"  # noqa: E731 - a fake: "Shanghai" is in most chunks of this fake index
    q = analyse_question("中国太平的11个数字员工岗位具体是哪些岗位？")
    assert not chinese_question_names_grounded(q, [factories], text, None, rare)
    assert chinese_question_names_grounded(q, [taiping], text, None, rare)
    assert chinese_question_names_grounded(q, [factories], text, None)  # without the index's counts: two-word names only
    # the city is in most chunks: a question about Shanghai's factories may cite a sentence that does not repeat it
    assert chinese_question_names_grounded(analyse_question("上海有多少家灯塔工厂？"), [taiping], text, None, rare)



CEREMONY = ("On March 12th, at the opening ceremony of the 2021 Harbor City Water Week in the Eastbank treatment "
            "plant, Lin Mei, Chief Engineer of the Harbor City Water Board and head of its leak-detection programme, "
            "and Zhou Kai, Director of the Riverside District Environmental Protection Office, along with "
            "representatives from five districts and twelve water utilities, jointly launched the Harbor City "
            "Water-Saving and Leak-Reduction Action Plan.")


def test_questions_for_names_need_a_name_the_question_did_not_give():
    # "the names of …", "what is … called" and "which <facility>" ask for a name, as "which company" does
    for q in ("What are the names of the two reservoirs?", "What is the harbour's new ferry called?",
              "Which hospitals joined the trial?", "Name the three partner schools."):
        assert expected_answer_type(q) == "name", q
    q = analyse_question("What are the names of the two reservoirs?")
    assert not answers_question_type(q, "The two reservoirs hold 12 million cubic metres [1].")
    assert answers_question_type(q, "They are the Eastbank and Millford reservoirs [1].")
    q = analyse_question("Which factories have been recognised as lighthouse factories?")
    assert not answers_question_type(q, "The factories recognised are the lighthouse factories and the smart "
                                        "factories [1].")
    assert answers_question_type(q, "The Lingang plant has been recognised as a lighthouse factory [1].")


def test_an_answer_that_only_restates_the_question_answers_nothing():
    assert not answers_question_type(analyse_question("翠屏山天文台的台长是谁？"), "翠屏山天文台的台长是[1]。")
    assert not answers_question_type(analyse_question("What does the plant supply?"), "The plant supplies [1].")
    assert answers_question_type(analyse_question("翠屏山天文台的台长是谁？"), "翠屏山天文台的台长是王明[1]。")
    # a quoted name is an answer even when its words are the question's
    assert answers_question_type(analyse_question("What AI strategy does the bank promote?"), 'The bank promotes the "All in AI" strategy [1].')
    # a yes or no may use nothing but the question's words
    assert answers_question_type(analyse_question("长风汽车公司的电动车占比超过一半吗？"), "长风汽车公司的电动车占比超过一半[1]。")


# A quoted term the question gives to the wrong name ------------------------------------------------------------

_FORUM = ("At the “Water for Tomorrow” forum, Lin Mei, Chief Engineer of the Harbor City Water Board, said the "
          "board will cut losses with the “quiet pipes” programme.")
_STRATEGY = "Eastbank Logistics regards automation as its first task, and promotes the “Robots First” strategy."


def _quoted_passages() -> list[Passage]:
    return [Passage(1, "d", 0, len(_FORUM), _FORUM), Passage(2, "d", 300, 300 + len(_STRATEGY), _STRATEGY)]


def test_a_quoted_term_given_to_another_person_or_company_is_a_false_premise():
    (c,) = attribution_conflicts(analyse_question("Why did Zhao Wen announce the “quiet pipes” programme?"),
                                 _quoted_passages())
    assert (c.asked, c.stated, c.passage, c.term) == ("Zhao Wen", "Lin Mei", 1, "quiet pipes")
    (c,) = attribution_conflicts(analyse_question("What does Northgate Shipping's “Robots First” strategy involve?"),
                                 _quoted_passages())
    assert (c.asked, c.stated, c.passage) == ("Northgate Shipping", "Eastbank Logistics", 2)


def test_a_quoted_term_asked_about_its_own_name_is_no_false_premise():
    for q in ("What did Lin Mei say about the “quiet pipes” programme?",
              "What does Eastbank Logistics' “Robots First” strategy involve?",
              "What is the “Robots First” strategy?",  # no name to compare
              "What did the Harbor City board's engineer say about the “quiet pipes” programme?"):
        assert attribution_conflicts(analyse_question(q), _quoted_passages()) == [], q
    # a term no passage states is not compared
    assert attribution_conflicts(analyse_question("Why did Zhao Wen launch “Blue Roofs”?"), _quoted_passages()) == []
