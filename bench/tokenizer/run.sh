#!/usr/bin/env bash
# One command: bertfit's tokenizers against the oracle (HF tokenizers 0.23.2 via npm) on the same 10 MB of
# generated text, single-threaded and with threads. Needs scripts/fetch-oracle-data.sh (run here if absent).
#   bash bench/tokenizer/run.sh [MB]
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${1:-10}
bash scripts/fetch-oracle-data.sh >/dev/null
cmake -S . -B build-tok -G Ninja -DCMAKE_BUILD_TYPE=Release -DBERTFIT_BENCH=ON >/dev/null
cmake --build build-tok --target bench_tokenizer >/dev/null
mkdir -p build-tok/bench
# "mixed": every script and character class of the parity cases; "latin": prose, code, URLs and accents.
node -e '
const {make} = require("./tools/tokenizer/gen_text.js");
const fs = require("fs"); const target = Number(process.argv[1]) * 1e6;
for (const [name, seed] of [["mixed", 11], ["latin", 12]]) {
  const next = make(seed); const out = []; let n = 0;
  while (n < target) { const l = name === "mixed" ? (next().text || "").replace(/[\r\n]+/g, " ") : next.corpus("cased");
    if (!l) continue; out.push(l); n += Buffer.byteLength(l) + 1; }
  fs.writeFileSync(`build-tok/bench/${name}.txt`, out.join("\n") + "\n");
}' "$MB"
D=tools/oracle/data
for text in latin mixed; do
  for model in bert-base-uncased roberta-gpt2; do
    echo "== $model on $text ($MB MB)"
    ./build-tok/bench/tokenizer/bench_tokenizer $D/$model build-tok/bench/$text.txt "$(nproc)"
    RAYON_NUM_THREADS=1 node bench/tokenizer/oracle_bench.js $D/$model/tokenizer.json build-tok/bench/$text.txt
    node bench/tokenizer/oracle_bench.js $D/$model/tokenizer.json build-tok/bench/$text.txt
  done
done
