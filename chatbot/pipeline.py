"""The answer workflow assembled from settings: the models loaded once, the llama-index retriever and evidence
postprocessor over the index, the checks, and the warm-up of the fixed prompt prefixes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llama_index.core.llms import LLM as IndexLLM

from chatbot import prompts
from chatbot.chat_model import as_index_llm, load_index_llm, warm
from chatbot.checks import AnswerCheck, default_checks
from chatbot.config import Settings
from chatbot.embeddings import Embedders, common_english_words
from chatbot.gate import GenerationGate
from chatbot.keyword import tokenize
from chatbot.llm import LLM
from chatbot.llm import load_llms as load_engines
from chatbot.nodes import ChunkRetriever, EvidencePostprocessor
from chatbot.retrieval import HybridRetriever
from chatbot.rewriting import AnswerTranslator, FollowUpRewriter, QuestionTranslator
from chatbot.workflow import AnswerWorkflow, Components


class EmbeddingSimilarity:
    """Cosine of claims and passages in the multilingual embedder (the English one if none)."""

    def __init__(self, embedders: Embedders) -> None:
        self.embedder = embedders.multilingual or embedders.primary

    def __call__(self, claims: list[str], passages: list[str]) -> np.ndarray:
        a = self.embedder.embed_documents(claims)
        b = self.embedder.embed_documents(passages)
        return a @ b.T


def load_llms(settings: Settings) -> tuple[IndexLLM, IndexLLM, IndexLLM]:
    """The answer LLM, and the ones that translate and rewrite follow-ups. A local model is loaded once with a
    llama.cpp context for each (so those prompts do not evict the answer prompt's cached prefix); a hosted or
    plugged LLM serves all three."""
    if settings.llm_factory:
        llm = load_index_llm(settings)
        return llm, llm, llm
    engines = load_engines(settings)
    wrapped = {id(e): as_index_llm(e, settings) for e in engines}
    return wrapped[id(engines[0])], wrapped[id(engines[1])], wrapped[id(engines[2])]


def build_workflow(settings: Settings, embedders: Embedders, hybrid: HybridRetriever, llm: IndexLLM | LLM,
                   translator: IndexLLM | LLM, rewriter: IndexLLM | LLM, gate: GenerationGate,
                   document_text: Callable[[str], str | None], checks: list[AnswerCheck] | None = None
                   ) -> AnswerWorkflow:
    def distinctive(word: str) -> bool:
        """Does the word name something particular: few indexed chunks use it (a company, not the city)?"""
        terms = tokenize(word)
        return bool(terms) and hybrid.keyword.chunk_share(terms[0]) <= settings.distinctive_share

    translating = as_index_llm(translator, settings)
    return AnswerWorkflow(Components(
        settings=settings, hybrid=hybrid, retriever=ChunkRetriever(hybrid), evidence=EvidencePostprocessor(hybrid),
        llm=as_index_llm(llm, settings), rewriter=FollowUpRewriter(as_index_llm(rewriter, settings)),
        translator=QuestionTranslator(translating),
        answer_translator=AnswerTranslator(translating, common_english_words()), gate=gate,
        similarity=EmbeddingSimilarity(embedders), checks=checks if checks is not None else default_checks(),
        document_text=document_text, distinctive=distinctive,
    ))


def warm_prompts(settings: Settings, llm: IndexLLM, translator: IndexLLM, rewriter: IndexLLM) -> dict[str, str]:
    """Evaluate the fixed prompt prefixes once, so the first user does not pay for them; a local model loads them
    from the cache folder when a previous start saved them (settings.prefix_state). The caller holds the gate."""
    state_dir = settings.cache_dir / "kv" if settings.prefix_state else None
    done = {"answer": warm(llm, prompts.answer_messages(["(warm-up)"], "(warm-up)"), state_dir)}
    if translator is not llm:
        messages = (prompts.translate_question_messages("(warm-up)", "zh") if settings.query_translation
                    else prompts.translate_answer_messages("Hello [1]."))
        done["translate"] = warm(translator, messages, state_dir)
    if rewriter is not llm:
        done["rewrite"] = warm(rewriter, prompts.rewrite_messages([("user", "Hi")], "(warm-up)"), state_dir)
    return done
