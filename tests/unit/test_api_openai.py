"""The OpenAI-compatible routes, driven by the real `openai` SDK (its HTTP client pointed at the app in-process)."""

from __future__ import annotations

import json

import openai
import pytest

from chatbot.api.openai_compat import MODEL_ID
from tests.fakes import ScriptedLLM, ScriptedSlowLLM
from tests.unit.api_app import ANSWER, DOC_ID, QUESTION, build_fake_index, serve_fake


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("api-index"))


def sdk(served, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=served.client, max_retries=0)


def test_models_lists_the_one_model(index, tmp_path):
    models = sdk(serve_fake(index, tmp_path)).models.list()
    assert [m.id for m in models.data] == [MODEL_ID] and models.data[0].object == "model"


def test_completion_keeps_markers_and_carries_citations(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=n)))
    completion = sdk(served).chat.completions.create(
        model="anything", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}])
    assert completion.object == "chat.completion" and completion.model == MODEL_ID
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == ANSWER.format(n=1)
    extra = completion.model_dump()
    assert extra["refused"] is False
    [citation] = extra["citations"]
    assert citation["n"] == 1 and citation["doc_id"] == DOC_ID
    assert index.text[citation["start"]:citation["end"]] == citation["text"]


def test_streamed_completion_sends_the_verified_answer_then_citations(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=n)))
    chunks = list(sdk(served).chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == ANSWER.format(n=1)  # the verified answer (renumbered), not the provisional draft
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_dump()["citations"][0]["doc_id"] == DOC_ID and last.model_dump()["refused"] is False
    assert len({c.id for c in chunks}) == 1


def test_stream_framing_ends_with_done(index, tmp_path):
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=1)))
    r = served.client.post("/v1/chat/completions", json={"model": "m", "stream": True,
                                                         "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in r.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        assert json.loads(line[6:])["object"] == "chat.completion.chunk"


def test_earlier_messages_are_the_history_and_content_parts_are_read(index, tmp_path):
    llm = ScriptedLLM("Which enterprises launched the initiative?", "The documents do not say.")
    served = serve_fake(index, tmp_path, llm)
    served.service.rewriter = llm  # follow-ups are rewritten by the LLM: the first reply is the rewrite
    sdk(served).chat.completions.create(model=MODEL_ID, messages=[
        {"role": "user", "content": "Who launched the AI+ initiative?"},
        {"role": "assistant", "content": "11 municipal state-owned enterprises [1]."},
        {"role": "user", "content": [{"type": "text", "text": "Which ones?"}]}])
    rewrite_prompt = json.dumps(llm.prompts[0], ensure_ascii=False)
    assert "Who launched the AI+ initiative?" in rewrite_prompt and "Which ones?" in rewrite_prompt


def test_errors_are_raised_by_the_sdk_with_the_message(index, tmp_path):
    client = sdk(serve_fake(index, tmp_path))
    with pytest.raises(openai.BadRequestError, match="last message must be the user's question"):
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "assistant", "content": "Hi"}])
    with pytest.raises(openai.APIStatusError) as too_long:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "why " * 400}])
    assert too_long.value.status_code == 413 and "limit is 1000" in too_long.value.message
    with pytest.raises(openai.UnprocessableEntityError, match="messages"):
        client.chat.completions.create(model=MODEL_ID, messages=[])
    with pytest.raises(openai.NotFoundError, match="nope"):
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                       extra_body={"doc_ids": ["nope"]})


def test_failure_mid_stream_is_raised_by_the_sdk(index, tmp_path):
    # An LLM that does not answer gives quotes instead (test_extractive_answers.py); any other failure is an error.
    llm = ScriptedSlowLLM("Eleven enterprises [1].", delay=0, fail=RuntimeError("llama.cpp crashed"))
    client = sdk(serve_fake(index, tmp_path, llm))
    stream = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                            stream=True)
    with pytest.raises(openai.APIError, match="Something went wrong"):
        list(stream)


def test_sdk_needs_the_key_once_keys_exist(index, tmp_path):
    from chatbot.api.keys import KeyStore

    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=1)))
    _, key = KeyStore(served.state.db).create("sdk")
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        sdk(served, "cbk_not-the-key").models.list()
    assert sdk(served, key).models.list().data[0].id == MODEL_ID
