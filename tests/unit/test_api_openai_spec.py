"""/v1 against the OpenAI spec, as the openai SDK's own pydantic types state it (the official OpenAPI YAML is not
available offline): each response validates, carries every field the type requires, and nothing else beyond our
documented extensions; usage counted with the model's tokenizer; what we cannot honour refused with a 400 naming
the parameter."""

from __future__ import annotations

import json
import typing
from typing import Any

import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel

from chatbot.api.openai_compat import MODEL_ID, estimate_tokens
from tests.fakes import ScriptedLLM
from tests.unit.api_app import ANSWER, QUESTION, build_fake_index, serve_fake

EXTENSIONS = {"citations", "refused", "mode", "notice"}  # ours, documented in /openapi.json


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("spec-index"))


class WordTokenizedLLM(ScriptedLLM):
    """A scripted engine with a tokenizer of its own: one token per word."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation) or annotation is type(None)


def check_strictly(data: dict[str, Any], model: type[BaseModel], nested: dict[str, type[BaseModel]],
                   extra: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every field the SDK type requires is there (and not null unless the type allows it); no key it lacks."""
    fields = model.model_fields
    assert set(data) <= set(fields) | extra, f"{model.__name__}: unknown {set(data) - set(fields) - extra}"
    for name, field in fields.items():
        if field.is_required():
            assert name in data, f"{model.__name__}.{name} missing"
        if name in data and data[name] is None:
            assert optional(field.annotation), f"{model.__name__}.{name} is null"
    for name, sub in nested.items():
        values = data.get(name)
        for value in values if isinstance(values, list) else [values] if values is not None else []:
            check_strictly(value, sub, {})


def body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL_ID, "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": QUESTION}], **extra}


def test_completion_is_an_openai_chat_completion_with_usage_from_the_models_tokenizer(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, tmp_path, WordTokenizedLLM(ANSWER.format(n=n)))
    data = served.client.post("/v1/chat/completions", json=body()).json()
    ChatCompletion.model_validate(data)
    check_strictly(data, ChatCompletion, {"choices": Choice, "usage": CompletionUsage}, EXTENSIONS)
    check_strictly(data["choices"][0]["message"], ChatCompletionMessage, {})
    assert data["choices"][0]["message"]["refusal"] is None
    prompt = len("Be brief.".split()) + len(QUESTION.split())
    completion = len(ANSWER.format(n=1).split())
    assert data["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}


def test_quoted_answers_count_the_text_returned(index, tmp_path):
    from tests.fakes import FakeUnreachableLLM

    served = serve_fake(index, tmp_path, FakeUnreachableLLM())
    data = served.client.post("/v1/chat/completions", json=body()).json()
    assert data["mode"] == "extractive"
    assert data["usage"]["completion_tokens"] == estimate_tokens(data["choices"][0]["message"]["content"]) > 0


def test_estimate_without_a_tokenizer():
    assert estimate_tokens("") == 0
    assert estimate_tokens("eleven enterprises") == 5  # 18 characters / 4, rounded up
    assert estimate_tokens("上海国资") == 4


def stream_chunks(served: Any, **extra: Any) -> list[dict[str, Any]]:
    r = served.client.post("/v1/chat/completions", json=body(stream=True, **extra))
    lines = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_stream_chunks_follow_the_spec_and_end_with_usage_when_asked(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, tmp_path, WordTokenizedLLM(ANSWER.format(n=n)))
    chunks = stream_chunks(served, stream_options={"include_usage": True})
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        check_strictly(chunk, ChatCompletionChunk, {"choices": ChunkChoice}, EXTENSIONS)
        for choice in chunk["choices"]:
            assert None not in choice["delta"].values()  # the spec omits, never nulls, a delta's fields
            check_strictly(choice["delta"], ChoiceDelta, {})
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all("role" not in d for d in deltas[1:]) and deltas[-1] == {}
    assert "".join(d.get("content", "") for d in deltas) == ANSWER.format(n=1)
    *answer, last = chunks
    assert all(c["usage"] is None for c in answer)  # the spec: null on every chunk but the last
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == len(ANSWER.format(n=1).split())
    assert "usage" not in stream_chunks(served)[-1]  # without include_usage: no usage field at all


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]}, "tools"),
    ({"functions": [{"name": "lookup", "parameters": {}}]}, "functions"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
])
def test_what_cannot_be_honoured_is_refused_naming_the_parameter(index, tmp_path, extra, param):
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=1)))
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="k", http_client=served.client, max_retries=0)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**body(stream=stream, **extra))
        assert refused.value.param == param and refused.value.code == "unsupported_parameter"
        assert refused.value.type == "invalid_request_error"


def test_what_changes_nothing_is_accepted(index, tmp_path):
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=1), ANSWER.format(n=1)))
    for extra in ({"n": 1, "response_format": {"type": "text"}, "temperature": 0.2, "max_tokens": 50},
                  {"tools": [], "tool_choice": "none"}):
        assert served.client.post("/v1/chat/completions", json=body(**extra)).status_code == 200


def test_model_list_is_an_openai_model_list(index, tmp_path):
    from openai.types import Model

    data = serve_fake(index, tmp_path).client.get("/v1/models").json()
    assert data["object"] == "list"
    for card in data["data"]:
        Model.model_validate(card)
        check_strictly(card, Model, {})


