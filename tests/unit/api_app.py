"""The served app over a real ChatService built on fakes (FakeEmbedder, Scripted*LLM), for the API unit tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatbot.app import create_app
from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.gate import GenerationGate
from chatbot.ingest import build_index
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from chatbot.state import AppState
from tests.fakes import FakeEmbedder, ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
DOC_ID = "shanghai-soe-ai-plus-initiative"
QUESTION = "How many municipal state-owned enterprises jointly launched the initiative?"
ANSWER = "Representatives from 11 municipal state-owned enterprises jointly launched it [{n}]."


@dataclass
class FakeIndex:
    root: Path
    settings: Settings
    embedders: Embedders
    retriever: HybridRetriever
    text: str  # the document's text

    def evidence_number(self, question: str, needle: str) -> int:
        """The [n] the prompt gives the evidence sentence containing `needle`."""
        evidence = self.retriever.retrieve(analyse_question(question)).evidence
        return next(i for i, e in enumerate(evidence, 1) if needle in e.text)


def build_fake_index(root: Path) -> FakeIndex:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(REPO / "corpus" / f"{DOC_ID}.txt", corpus)
    shutil.copy(REPO / "corpus" / "manifest.toml", corpus)
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", collection_prefix="t", relevance_floor=0.2)
    build_index(settings, embedders=embedders, progress=False)
    return FakeIndex(root, settings, embedders, HybridRetriever(settings, embedders),
                     (corpus / f"{DOC_ID}.txt").read_text(encoding="utf-8"))


@dataclass
class ServedFake:
    app: FastAPI
    client: TestClient
    service: ChatService
    state: AppState


def serve_fake(index: FakeIndex, db_dir: Path, llm: Any = None, *, gate: GenerationGate | None = None,
               **overrides: Any) -> ServedFake:
    """create_app (no Gradio) over a ChatService with the fake embedders and `llm`; its own database."""
    settings = index.settings.model_copy(update={"db_path": db_dir / "chatbot.sqlite3", **overrides})
    llm = llm if llm is not None else ScriptedLLM()
    service = ChatService(settings, embedders=index.embedders, retriever=index.retriever, llm=llm, gate=gate)
    state = AppState(settings, service=service)
    app = create_app(settings, state=state, ui=False)
    return ServedFake(app, TestClient(app), service, state)
