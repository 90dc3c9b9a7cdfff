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
