"""Verification across languages with the real multilingual embedder (USE): a Chinese claim is checked against
one clause of a long English sentence."""

import pytest

from chatbot.query import analyse_question
from chatbot.verification import Passage, verify_citations
from tests.fakes import FakeEmbedder
from tests.unit.test_citations import CEREMONY

pytestmark = pytest.mark.integration


def real_similarity():
    from chatbot.embeddings import Embedders, USEEmbedder
    from chatbot.pipeline import EmbeddingSimilarity

    return EmbeddingSimilarity(Embedders(FakeEmbedder("minilm"), USEEmbedder(threads=1)))


def test_a_chinese_claim_is_supported_by_one_clause_of_a_long_english_sentence():
    """Across languages the other clauses of a long sentence dilute the cosine with the whole; the clause that
    says it is enough (the real multilingual embedder: 0.29 with the sentence, 0.53 with the clause)."""
    similarity = real_similarity()
    passage = Passage(1, "d", 0, len(CEREMONY), CEREMONY)
    question = analyse_question("周凯担任什么职务？")
    right = verify_citations("周凯是河滨区环保办公室的主任[1]。", [passage], question, similarity)
    assert not right.refused and "主任" in right.answer
    invented = verify_citations("周凯是河滨区区长[1]。", [passage], question, similarity)
    assert invented.refused


@pytest.mark.xfail(strict=True, reason="known weakness: a clause that names two people supports a Chinese claim "
                                       "giving one of them the other's role (cosine 0.52 with that clause)")
def test_a_clause_naming_two_people_does_not_lend_one_the_others_role():
    passage = Passage(1, "d", 0, len(CEREMONY), CEREMONY)
    swapped = verify_citations("周凯是东岸水厂的总工程师[1]。", [passage], analyse_question("周凯担任什么职务？"),
                               real_similarity())
    assert swapped.refused
