#!/usr/bin/env bash
# Regenerates every committed tokenizer fixture (tests/fixtures/tokenizer/) from scratch:
#   1. generated text (gen_text.js, seeded): the 1.2 MB parity cases and two training corpora;
#   2. vocabularies trained here with bertfit's trainers: a cased WordPiece, a Chinese WordPiece (uncased,
#      from CJK text) and a byte-level BPE;
#   3. golden outputs of the oracle (npm tokenizers@0.23.2, tools/oracle/make_goldens.js) for those and for
#      the fetched real vocabularies (bert-base-uncased, GPT-2/RoBERTa merges).
# Usage: tools/tokenizer/make_fixtures.sh BERTFIT_BINARY   (after scripts/fetch-oracle-data.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:?usage: make_fixtures.sh path/to/bertfit}
F=tests/fixtures/tokenizer
G="node tools/oracle/make_goldens.js"
D=tools/oracle/data
mkdir -p $F
node tools/tokenizer/gen_text.js --seed 20240611 --bytes 1100000 | gzip -9n >$F/cases.jsonl.gz
node tools/tokenizer/gen_text.js --corpus cased --seed 7 --bytes 400000 | gzip -9n >$F/corpus-cased.txt.gz
node tools/tokenizer/gen_text.js --corpus chinese --seed 8 --bytes 400000 | gzip -9n >$F/corpus-chinese.txt.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c $F/corpus-cased.txt.gz >"$tmp/cased.txt"
gunzip -c $F/corpus-chinese.txt.gz >"$tmp/chinese.txt"
# Options here must match tests/tokenizer/tokenizer_unit_test.cpp.
"$BIN" train-tokenizer --corpus "$tmp/cased.txt" --out $F/bert-cased --vocab-size 4000 --cased
"$BIN" train-tokenizer --corpus "$tmp/chinese.txt" --out $F/bert-chinese --vocab-size 6000 --limit-alphabet 2500
"$BIN" train-tokenizer --type bpe --corpus "$tmp/cased.txt" --out $F/bpe-trained --vocab-size 3000
# The oracle reads the BERT vocabularies through a tokenizer.json built independently of bertfit's writer.
$G bert-json $F/bert-cased/vocab.txt false "$tmp/bert-cased.json"
$G bert-json $F/bert-chinese/vocab.txt true "$tmp/bert-chinese.json"
for name in bert-base-uncased roberta-gpt2; do
  $G cases $D/$name/tokenizer.json $F/cases.jsonl.gz $F/golden-$name.jsonl.gz
  $G scan $D/$name/tokenizer.json $F/scan-$name.txt.gz
  $G truncation $D/$name/tokenizer.json $F/cases.jsonl.gz $F/truncation-$name.jsonl.gz
done
for name in bert-cased bert-chinese; do
  $G cases "$tmp/$name.json" $F/cases.jsonl.gz $F/golden-$name.jsonl.gz
  $G scan "$tmp/$name.json" $F/scan-$name.txt.gz
done
$G lines "$tmp/bert-cased.json" $F/corpus-cased.txt.gz $F/corpus-golden-bert-cased.jsonl.gz
$G lines "$tmp/bert-chinese.json" $F/corpus-chinese.txt.gz $F/corpus-golden-bert-chinese.jsonl.gz
# The BPE tokenizer.json is bertfit's own writer's output: the oracle loading it proves HF reads it.
$G lines $F/bpe-trained/tokenizer.json $F/corpus-cased.txt.gz $F/corpus-golden-bpe-trained.jsonl.gz
du -sh $F
