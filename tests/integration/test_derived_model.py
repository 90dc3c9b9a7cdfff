"""The re-quantized 1.5B (`packaged:qwen2.5-coder-1.5b-q4_0`): made once from the packaged model by llama.cpp's
own quantizer, a real GGUF of the asked type that answers a question from the documents."""

from chatbot.llm import DERIVED, LocalLLM, resolve_model_path
from chatbot.service import ChatService

KEY = "packaged:qwen2.5-coder-1.5b-q4_0"


def test_the_q4_0_model_is_made_once_and_answers(real_settings, real_service):
    import llama_cpp

    path = resolve_model_path(KEY, real_settings.cache_dir)
    assert path.name == DERIVED[KEY].file_name and path.read_bytes()[:4] == b"GGUF"
    mtime = path.stat().st_mtime_ns
    assert resolve_model_path(KEY, real_settings.cache_dir).stat().st_mtime_ns == mtime  # not made again
    vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    assert int(vocab.metadata["general.file_type"]) == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    del vocab

    settings = real_settings.model_copy(update={"llm_model": KEY})
    llm = LocalLLM(path, threads=settings.llm_threads, n_ctx=settings.llm_context)
    service = ChatService(settings, embedders=real_service.embedders, retriever=real_service.retriever, llm=llm)
    answer = service.ask("How many municipal state-owned enterprises jointly launched the initiative?")
    assert not answer.refused and "11" in answer.answer and answer.citations, answer
    assert "11 municipal state-owned enterprises" in answer.citations[0].text
    del llm
