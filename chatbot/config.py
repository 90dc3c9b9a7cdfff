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
    evidence_token_budget: int = 340
    relevance_floor: float = 0.21  # multilingual (USE) cosine
    relevance_floor_english: float = 0.33  # MiniLM cosine, English questions
    relevance_min_word_share: float = 0.45
    sentence_dense: bool = True
    min_lexical_support: float = 0.6
    min_semantic_support: float = 0.5
    min_semantic_support_cross: float = 0.3
    keyword_weight: float = 1.0
    # A chunk or evidence sentence that contains a term the question quotes ("All in AI") gets this added to its
    # score: more than any fused rank score and any cosine, so the question's quoted term is asked about word for word.
    quoted_bonus: float = 1.0
    lexical_weight: float = 0.15  # an evidence sentence with every word of the question gains this much over its cosine
    secondary_embedder_weight: float = 0.5  # the English embedder's sentence cosine counts half of the multilingual one's

    # Checks of an answer (verification.py, premise.py, question_intent.py)
    max_contiguous_citation: int = 300  # characters: a subject and its clause further apart are cited as two spans
    referent_sentences: int = 3  # how far back a sentence that names nobody ("It has 44 turbines") may refer
    # A false premise: share of the words around the question's number found around the documents' number
    premise_min_overlap: float = 0.5
    premise_min_overlap_counted: float = 0.25  # the same, when both numbers count a noun ("25 stations", "17 stations")
    premise_min_similarity_cross: float = 0.35  # a Chinese question and an English passage: multilingual cosine instead
    # Two counted nouns name the same thing when their multilingual cosine reaches this: synonyms score 0.88-0.93
    # there (enterprises/companies, staff/employees, firms/companies), different things at most 0.68 (beds/rooms,
    # employees/companies 0.52, enterprises/people 0.27).
    same_noun_similarity: float = 0.8
    # Multilingual cosine of two counted nouns that name the same kind ("people", "volunteers"): a "how many <noun>"
    # answer that counts something this close to the noun answers the question.
    focus_similarity: float = 0.45

    # Generation
    llm_backend: Literal["local", "hosted"] = "local"
    # Any llama-index LLM instead: "package.module:function", called with these settings (docs/architecture.md)
    llm_factory: str | None = None
    llm_model: str = "packaged:qwen2.5-coder-1.5b"
    llm_threads: int = 2
    llm_context: int = 4096
    max_answer_tokens: int = 100
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

    # Branding: what the chat, the API documentation and the widget call this deployment, per interface language
    # ("en", "zh"; English where a language is missing). As JSON in the environment: CHATBOT_TITLE='{"en": "…"}'.
    # The chat's header and page title, and the API documentation's title ("… Q&A")
    title: dict[str, str] = {"en": "Shanghai SOE AI+ Initiative", "zh": "上海国资国企 AI+ 行动倡议"}
    subtitle: dict[str, str] = {  # under the title in the chat header
        "en": "Ask the documents in English or Chinese. Every sentence of an answer cites the passage it comes "
              "from; sentences no passage supports are removed.",
        "zh": "可用中文或英文向文件提问。答案的每一句都标注出处；没有原文支持的句子会被删除。",
    }
    brand_mark: str = "AI+"  # the short badge before the title in the chat header
    # Offered to a first-time user in the empty chat: questions the indexed documents answer
    example_questions: dict[str, list[str]] = {
        "en": [
            "What is the Shanghai SOE AI+ Action Initiative?",
            "Who launched the initiative, and when?",
            "What is China Taiping doing with large models?",
            "What is the Airport Group building with AI?",
        ],
        "zh": [
            "上海国资国企AI+行动倡议的主要内容是什么？",
            "这项倡议是由谁发起的？",
            "上海电气在人工智能方面做了哪些工作？",
            "上汽集团如何使用大模型？",
        ],
    }
    # The embeddable widget's header (a page's data-title attribute still wins)
    widget_title: dict[str, str] = {"en": "Ask the AI+ Initiative documents", "zh": "上海国资国企 AI+ 文件问答"}

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


# The defaults alone (no environment, no TOML file): the default of a stage's threshold argument, so a stage
# called without one behaves as in a deployment that configures nothing. Callers pass their Settings' values.
DEFAULTS = Settings.model_construct()
