"""Command line: chatbot ingest | ask | eval | bench-free helpers. Errors print a message, never a trace."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from chatbot.config import Settings
from chatbot.errors import ChatbotError
from chatbot.schemas import Answer, Turn


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "corpus", None):
        overrides["corpus_dir"] = Path(args.corpus).resolve()
    if getattr(args, "index", None):
        overrides["index_dir"] = Path(args.index).resolve()
    if getattr(args, "top_k", None):
        overrides["top_k"] = args.top_k
    return Settings(**overrides)


def cmd_ingest(args: argparse.Namespace) -> int:
    from chatbot.ingest import build_index

    settings = _settings(args)
    if not settings.corpus_dir.is_dir():
        raise ChatbotError(f"Corpus folder {settings.corpus_dir} does not exist.")
    summary = build_index(settings, progress=not args.quiet, wait=args.wait)
    for path, reason in summary.skipped:
        print(f"Skipped {path}: {reason}", file=sys.stderr)
    for path, note in summary.notes:
        print(f"Read {path}: {note}", file=sys.stderr)
    print(summary.line())
    return 0


def render_answer(answer: Answer, width: int = 100) -> str:
    lines = []
    if answer.standalone_question:
        lines.append(f"(asked as: {answer.standalone_question})")
    if answer.mode == "extractive":
        lines.append(textwrap.fill(f"({answer.notice})", width))
    lines.extend(textwrap.fill(line, width) for line in answer.answer.splitlines())
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            head = f"[{c.n}] {c.title} ({c.source}, characters {c.start}-{c.end})"
            lines.append(head)
            lines.append(textwrap.fill(f"“{c.text}”", width, initial_indent="    ", subsequent_indent="    "))
    if answer.unsupported:
        lines.append("")
        lines.append("Removed as unsupported by the documents:")
        removed = [f"{r.text} ({r.reason})" for r in answer.removed] or answer.unsupported
        lines.extend(textwrap.fill(s, width, initial_indent="  - ", subsequent_indent="    ") for s in removed)
    if answer.refused and answer.refusal_reason:
        lines.append(f"(Why: {answer.refusal_reason})")
    return "\n".join(lines)


def _load_service(settings: Settings):  # noqa: ANN202
    from chatbot.service import ChatService

    print("Loading the index and models…", file=sys.stderr, flush=True)
    service = ChatService.from_settings(settings)
    service.warmup()
    return service


def stream_answer(service, question: str, history: list[Turn] | None = None, *,  # noqa: ANN001
                  show_draft: bool = True) -> Answer:
    """Consume the answer stream: the draft is shown dimmed on stderr as it is written (a terminal only), then
    erased; the caller prints the verified answer that replaces it."""
    from chatbot.service import AnswerFailed

    live = show_draft and sys.stderr.isatty()
    drafted = 0
    answer = None
    for event in service.ask_stream(question, history=history):
        if event.type == "sources" and event.rewritten and live:
            print(f"\033[2m(asked as: {event.question})\033[0m", file=sys.stderr, flush=True)
        elif event.type == "draft" and live:
            if not drafted:
                sys.stderr.write("\033[2mdraft: ")
            sys.stderr.write(event.delta)
            sys.stderr.flush()
            drafted += len(event.delta)
        elif event.type == "answer":
            answer = event.answer
        elif event.type == "error":
            if drafted:
                sys.stderr.write("\033[0m\n")
            raise AnswerFailed(event)
    if drafted:
        sys.stderr.write("\033[0m\r\033[2K\n")  # end the provisional draft line; the verified answer follows
    assert answer is not None
    return answer


def cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.jsonl:
        return _ask_jsonl(settings, Path(args.jsonl))
    service = _load_service(settings)
    if args.question:
        answer = stream_answer(service, " ".join(args.question), show_draft=not args.json)
        print(answer.model_dump_json() if args.json else render_answer(answer))
        return 0
    print("Ask a question about the documents (English or Chinese); follow-up questions use the conversation.\n"
          "'new' starts a new conversation; Ctrl-D or 'exit' quits.", file=sys.stderr)
    history: list[Turn] = []
    while True:
        try:
            question = input("\nQuestion> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if question.strip().lower() in {"exit", "quit"}:
            return 0
        if question.strip().lower() == "new":
            history = []
            continue
        try:
            answer = stream_answer(service, question, history, show_draft=not args.json)
        except ChatbotError as exc:
            print(str(exc), file=sys.stderr)
            continue
        history += [Turn(role="user", content=question), Turn(role="assistant", content=answer.answer)]
        print(answer.model_dump_json() if args.json else render_answer(answer))


def _ask_jsonl(settings: Settings, path: Path) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ChatbotError(f"Cannot read {path}: {exc.strerror}.") from exc
    service = _load_service(settings)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question, qid = item["question"], item.get("id")
        except (json.JSONDecodeError, KeyError, TypeError):
            print(json.dumps({"id": None, "error": f"line {lineno}: expected {{\"id\": ..., \"question\": ...}}"}),
                  flush=True)
            continue
        try:
            answer = service.ask(question, id=None if qid is None else str(qid))
            print(answer.model_dump_json(), flush=True)
        except ChatbotError as exc:
            print(json.dumps({"id": qid, "question": question, "error": str(exc)}, ensure_ascii=False), flush=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import uvicorn

    from chatbot.app import check_workers, configure_logging, create_app
    from chatbot.state import AppState

    settings = _settings(args)
    host = args.host or settings.host
    port = args.port or settings.port
    workers = 1 if args.workers is None else args.workers
    for warning in check_workers(settings, workers):
        print(f"Note: {warning}", file=sys.stderr)
    if args.ingest and workers > 1:
        # In a child process, so the ingest's models are not kept in the supervisor for as long as it serves.
        done = subprocess.run([sys.executable, "-m", "chatbot.cli", "ingest", "--corpus", str(settings.corpus_dir),
                               "--index", str(settings.index_dir)], check=False)
        if done.returncode != 0:
            raise ChatbotError("The ingest before serving failed (see above); nothing was served.")
    elif args.ingest:
        from chatbot.ingest import build_index

        summary = build_index(settings, progress=True)
        for path, reason in summary.skipped:
            print(f"Skipped {path}: {reason}", file=sys.stderr)
        print(summary.line(), file=sys.stderr)
    from chatbot.api import check_exposure

    check_exposure(settings, host, open_api=args.open_api)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if workers > 1:
        from chatbot.db import Database

        Database(settings.db_path)  # created (WAL) here once, not by the workers racing each other
        # Each worker process builds its app from the environment: pass on the folders given on the command line.
        os.environ["CHATBOT_CORPUS_DIR"] = str(settings.corpus_dir)
        os.environ["CHATBOT_INDEX_DIR"] = str(settings.index_dir)
        print(f"API at http://{shown}:{port}/ in {workers} workers  (API docs: http://{shown}:{port}/docs; "
              "Ctrl-C stops)", file=sys.stderr, flush=True)
        uvicorn.run("chatbot.app:create_worker_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning")
        return 0
    configure_logging()
    state = AppState(settings)
    app = create_app(settings, state=state)
    print(f"Chat and API at http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    """MCP over stdio: stdout carries the protocol, so every log line goes to stderr."""
    import logging

    from chatbot.mcp_server import run_stdio
    from chatbot.state import AppState

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run_stdio(AppState(_settings(args)))
    return 0


def cmd_model_path(args: argparse.Namespace) -> int:
    from chatbot.llm import resolve_model_path

    settings = _settings(args)
    print(resolve_model_path(settings.llm_model, settings.cache_dir))
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from chatbot.db import Database

    settings = _settings(args)
    if not settings.db_path.is_file():
        raise ChatbotError(f"No feedback database at {settings.db_path} yet: nothing has been rated.")
    text = Database(settings.db_path).export_feedback(args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from chatbot.api.keys import KeyStore
    from chatbot.db import Database

    store = KeyStore(Database(_settings(args).db_path))
    if args.keys_command == "create":
        record, key = store.create(args.name or "", rate_limit=args.rate_limit)
        print(key)
        print(f"Created API key {record.id} ({record.name or 'no name'}). It is shown only this once: store it now. "
              "Every API request now needs the header `Authorization: Bearer <key>`.", file=sys.stderr)
    elif args.keys_command == "list":
        keys = store.list()
        if args.json:
            print(json.dumps([k.model_dump() for k in keys], ensure_ascii=False))
        elif not keys:
            print("No API keys: the API is open to whoever can reach it (loopback only, unless --open-api).",
                  file=sys.stderr)
        for k in keys if not args.json else []:
            state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
            limit = "default limit" if k.rate_limit is None else f"{k.rate_limit}/min" if k.rate_limit else "no limit"
            print(f"{k.id:>4}  {k.prefix}…  {k.name or '-':<20} created {k.created_at}  "
                  f"last used {k.last_used_at or 'never'}  {limit}  {state}")
    else:
        record = store.revoke(args.key)
        print(f"Revoked API key {record.id} ({record.name or record.prefix + '…'}).", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from chatbot.evaluation.runner import main as eval_main

    return eval_main(args, _settings(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbot", description="Cited answers from the initiative documents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index the corpus into Chroma (idempotent)")
    p.add_argument("--corpus", help="folder of documents (default: corpus/)")
    p.add_argument("--index", help="index folder (default: index/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wait", action="store_true", help="wait for an ingest already running on the index "
                   "(default: refuse with a message)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question (interactive when none is given)")
    p.add_argument("question", nargs="*", help="the question")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--jsonl", metavar="FILE", help='answer each {"id", "question"} line of FILE, one JSON per line')
    p.add_argument("--index", help="index folder (default: index/)")
    p.add_argument("--top-k", type=int, dest="top_k", help="chunks to retrieve")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the chat and the HTTP API (http://127.0.0.1:7860/)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, only this machine)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--ingest", action="store_true", help="bring the index up to date with the corpus first")
    p.add_argument("--corpus", help="folder of documents for --ingest (default: corpus/)")
    p.add_argument("--index", help="index folder (default: index/)")
    p.add_argument("--open-api", action="store_true", dest="open_api",
                   help="allow serving on a non-loopback address with no API key (the API is then open to all)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (default 1). More than one needs a Chroma server (CHATBOT_CHROMA_HOST) and "
                   "serves the HTTP API only; README: \"When one machine is not enough\"")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", help="serve the Model Context Protocol over stdio (tools ask, search, list_documents; "
                       "documents as resources), for a desktop AI assistant to launch")
    p.add_argument("--index", help="index folder (default: index/)")
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser("model-path", help="print the path of the GGUF model (CHATBOT_LLM_MODEL), assembling the "
                       "packaged one first; e.g. for `python -m llama_cpp.server --model`")
    p.set_defaults(func=cmd_model_path)

    p = sub.add_parser("feedback", help="feedback given in the chat")
    fsub = p.add_subparsers(dest="feedback_command", required=True)
    e = fsub.add_parser("export", help="print every rating with its question, answer and citations")
    e.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    e.add_argument("--output", "-o", help="write to this file instead of standard output")
    e.set_defaults(func=cmd_feedback)

    p = sub.add_parser("keys", help="API keys for the HTTP API (stored hashed in the database)")
    ksub = p.add_subparsers(dest="keys_command", required=True)
    k = ksub.add_parser("create", help="create a key and print it (shown only once)")
    k.add_argument("--name", help="what the key is for, e.g. the portal's name")
    k.add_argument("--rate-limit", type=int, dest="rate_limit", metavar="N",
                   help="requests per minute for this key (default: the server's rate_limit_per_minute; 0: none)")
    k.set_defaults(func=cmd_keys)
    k = ksub.add_parser("list", help="list keys (id, first characters, name, dates; never the key)")
    k.add_argument("--json", action="store_true", help="print one JSON array")
    k.set_defaults(func=cmd_keys)
    k = ksub.add_parser("revoke", help="revoke a key: by id, name, its first characters or the whole key")
    k.add_argument("key", help="id, name, prefix or key")
    k.set_defaults(func=cmd_keys)

    p = sub.add_parser("eval", help="run the eval suite and write a report")
    from chatbot.evaluation.options import add_eval_arguments

    add_eval_arguments(p)
    p.add_argument("--index", help="index folder (default: index/)")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ChatbotError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
