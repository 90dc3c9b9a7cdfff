"""The one Settings object: defaults, CHATBOT_* environment variables and an optional TOML file."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chatbot"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads `chatbot.toml` (or the file named by CHATBOT_CONFIG); env vars still win."""

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("CHATBOT_CONFIG", REPO_ROOT / "chatbot.toml"))
        if not path.is_file():
            return {}
        with path.open("rb") as f:
            return tomllib.load(f)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATBOT_", extra="ignore")

    # Where things live
    corpus_dir: Path = REPO_ROOT / "corpus"
    index_dir: Path = REPO_ROOT / "index"
    cache_dir: Path = Field(default_factory=_default_cache)

    # Chroma: embedded by default; set chroma_host to use a Chroma server instead
    chroma_host: str | None = None
    chroma_port: int = 8000
    collection_prefix: str = "chatbot"
    index_check_s: float = 5.0  # how often a running retriever asks Chroma whether a newer index was committed

    # Chunking
    chunk_chars: int = 900
    chunk_overlap_sentences: int = 1
    max_file_mb: float = 50.0  # larger corpus files are skipped with the reason
    # A chunk's vector: "sentences" (the length-weighted mean of its sentences' vectors, so an ingest embeds each
    # sentence once and no chunk text; see README "Ingest") or "text" (the chunk's own text embedded too)
    chunk_vectors: Literal["sentences", "text"] = "sentences"
    ingest_round_texts: int = 4096  # distinct texts embedded and written per ingest round (a killed ingest loses one)

    # Embedders: the English sentence-transformers model plus a multilingual one for fusion
    embed_model: str = "packaged:all-MiniLM-L6-v2"
    multilingual_embedder: Literal["use", "none"] = "use"

    # Retrieval
    top_k: int = 4
    candidate_k: int = 12
    evidence_sentences: int = 3
    evidence_sentences_many: int = 5
    # An answer that verification refuses (or that the model refuses) is tried once more with the next-best
    # evidence sentences (those not shown the first time); one more LLM call, only for refusals. Off: measured on
    # dev it answered 1 more question right and 3 unanswerable ones wrongly (README "Speed levers, measured")
    second_try: bool = False
    evidence_token_budget: int = 340
    # What the model reads: "sentence" (the best sentences whole) or "trimmed" (cut to their first clause and the
    # clauses that match the question: shorter prompts, measured less accurate). Citations are clauses either way.
    evidence_unit: Literal["sentence", "trimmed"] = "sentence"
    evidence_trimmed_budget: int = 240  # prompt tokens for evidence_sentences trimmed sentences
    clause_sentences: int = 6  # best sentences split into clauses and scored ("trimmed")
    relevance_floor: float = 0.21  # multilingual (USE) cosine
    relevance_floor_english: float = 0.33  # MiniLM cosine, English questions
    relevance_min_word_share: float = 0.45
    sentence_dense: bool = True
    min_lexical_support: float = 0.6
    min_semantic_support: float = 0.5
    min_semantic_support_cross: float = 0.3
    keyword_weight: float = 1.0

    # Generation
    llm_backend: Literal["local", "hosted"] = "local"
    # Any llama-index LLM instead: "package.module:function", called with these settings (docs/architecture.md)
    llm_factory: str | None = None
    llm_model: str = "packaged:qwen2.5-coder-1.5b"
    llm_threads: int = 2
    llm_context: int = 4096
    max_answer_tokens: int = 100
    # Chinese questions: "direct" (the model answers in Chinese) or "translate" (answer in English, then translate)
    chinese_answers: Literal["direct", "translate"] = "direct"
    answer_cache_size: int = 2000  # verified answers kept for repeated questions (0: no cache)
    query_translation: bool = True  # also search a Chinese question in English when English documents are indexed
    prefix_state: bool = True  # save the fixed prompt prefix's evaluated state in cache_dir/kv, load it at start
    hosted_base_url: str | None = None
    hosted_model: str = "gpt-4o-mini"
    hosted_api_key: str | None = None
    hosted_connect_timeout_s: float = 5.0  # seconds to open a connection to the endpoint
    hosted_read_timeout_s: float = 30.0  # seconds to wait for the first token, and for each one after it
    hosted_max_attempts: int = 3  # tries of one request while nothing has been streamed (connection errors, 429, 5xx)
    hosted_backoff_s: float = 0.5  # wait before the 2nd try, doubled for each later one, times a random 0.5-1
    hosted_backoff_max_s: float = 8.0  # longest wait between tries; a longer Retry-After is not waited for
    hosted_concurrency: int = 4  # generations sent to a hosted endpoint at once
    extractive_quotes: int = 2  # evidence sentences quoted when the LLM does not answer
    # Quotes after the best one, when the LLM did not answer, score at least this share of its score: measured on
    # the corpus, the sentences below it were about something else than the question (Shanghai Electric's
    # computing power quoted for China Taiping's model).
    extractive_min_share: float = 0.8
    # A one-word name in at most this share of the indexed chunks names something particular (a company, not the
    # city every passage names: "Shanghai" is in 53% of the initiative's chunks)
    distinctive_share: float = 0.25

    # Serving
    host: str = "127.0.0.1"
    port: int = 7860
    db_path: Path = REPO_ROOT / "index" / "chatbot.sqlite3"  # feedback and API keys
    max_waiting: int = 8  # questions waiting for the model before new ones get "busy" (HTTP 503)

    # HTTP API (chatbot/api): portal origins allowed by CORS (none by default), as a JSON list or comma-separated
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_minute: int = 60  # API requests per key (per client address when no key exists); 0: no limit
    max_body_bytes: int = 65536  # larger API request bodies get 413

    # Input limits
    max_question_chars: int = 1000
    max_history_chars: int = 8000

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        if isinstance(value, list):
            return [str(v).strip().rstrip("/") for v in value if str(v).strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


def display_path(path: Path) -> str:
    """A document's path relative to the repo root, or absolute when outside it."""
    path = path.resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
