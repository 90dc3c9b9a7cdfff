import hashlib
import sys
import types

import pytest

from chatbot.errors import ModelMissing
from chatbot.llm import PackagedModel, assemble_packaged_model, resolve_model_path


def fake_parts(tmp_path, monkeypatch, chunks: list[bytes], prefix: str = "fakepart") -> None:
    for i, data in enumerate(chunks, 1):
        path = tmp_path / f"part{i}.bin"
        path.write_bytes(data)
        module = types.ModuleType(f"{prefix}{i}")
        module.get_part_path = lambda p=path: str(p)
        monkeypatch.setitem(sys.modules, f"{prefix}{i}", module)


def model(chunks: list[bytes], sha: str | None = None) -> PackagedModel:
    whole = b"".join(chunks)
    return PackagedModel("packaged:fake", "fake.gguf", "fakepart", "fake-part", len(chunks), len(whole),
                         sha or hashlib.sha256(whole).hexdigest())


def test_parts_are_assembled_once_and_checked(tmp_path, monkeypatch):
    chunks = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    fake_parts(tmp_path, monkeypatch, chunks)
    path = assemble_packaged_model(model(chunks), tmp_path / "cache")
    assert path.read_bytes() == b"".join(chunks)
    mtime = path.stat().st_mtime_ns
    assert assemble_packaged_model(model(chunks), tmp_path / "cache").stat().st_mtime_ns == mtime  # no rework


def test_a_wrong_checksum_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    chunks = [b"x" * 10, b"y" * 10]
    fake_parts(tmp_path, monkeypatch, chunks)
    with pytest.raises(ModelMissing, match="Reinstall the fake-part"):
        assemble_packaged_model(model(chunks, sha="0" * 64), tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / "fake.gguf").exists()


def test_a_missing_part_package_names_the_fix(tmp_path, monkeypatch):
    fake_parts(tmp_path, monkeypatch, [b"x"], prefix="otherpart")
    with pytest.raises(ModelMissing, match="fake-part1 is not installed"):
        assemble_packaged_model(model([b"x"]), tmp_path / "cache")


def test_a_missing_gguf_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelMissing, match="No GGUF model file"):
        resolve_model_path(str(tmp_path / "nope.gguf"), tmp_path)


def test_a_derived_model_is_quantized_once_and_a_failure_leaves_no_file(tmp_path, monkeypatch):
    """llama.cpp's quantizer is replaced by a fake that writes a marked copy (the real re-quantization of the
    packaged model is tests/integration/test_derived_model.py)."""
    import llama_cpp

    from chatbot import llm

    chunks = [b"GGUF" + b"a" * 100, b"b" * 50]
    fake_parts(tmp_path, monkeypatch, chunks)
    monkeypatch.setitem(llm.PACKAGED, "packaged:fake", model(chunks))
    derived = llm.DerivedModel("packaged:fake-q4_0", "fake-q4_0.gguf", "packaged:fake", "LLAMA_FTYPE_MOSTLY_Q4_0")
    monkeypatch.setitem(llm.DERIVED, derived.key, derived)
    calls = []

    def fake_quantize(src, dst, params):  # noqa: ANN001, ANN202
        calls.append(params._obj.ftype)
        with open(src, "rb") as f, open(dst, "wb") as out:
            out.write(f.read() + b"q4_0")
        return 0

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", fake_quantize)
    path = resolve_model_path("packaged:fake-q4_0", tmp_path / "cache")
    assert path.name == "fake-q4_0.gguf" and path.read_bytes() == b"".join(chunks) + b"q4_0"
    assert calls == [llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0]
    assert resolve_model_path("packaged:fake-q4_0", tmp_path / "cache") == path and len(calls) == 1  # once

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", lambda src, dst, params: 1)
    with pytest.raises(ModelMissing, match="could not re-quantize"):
        resolve_model_path("packaged:fake-q4_0", tmp_path / "other-cache")
    assert not (tmp_path / "other-cache" / "models" / "fake-q4_0.gguf").exists()
