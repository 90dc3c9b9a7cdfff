#!/bin/sh
# The eval on the second corpus, with the chatbot's default settings: index the 32 articles into index/other
# (idempotent), then answer and score the 42 questions of gold.jsonl. Extra arguments go to `chatbot eval`
# (e.g. --limit 5, --baseline). Run from anywhere: ./eval/corpora/other/run.sh
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cd "$REPO"
export CHATBOT_CORPUS_DIR="$HERE/corpus"
INDEX="${CHATBOT_OTHER_INDEX:-$REPO/index/other}"
.venv/bin/chatbot ingest --corpus "$HERE/corpus" --index "$INDEX"
exec .venv/bin/chatbot eval --set "$HERE/gold.jsonl" --index "$INDEX" --out "$REPO/eval/reports/other" "$@"
