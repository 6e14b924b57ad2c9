// The oracle's throughput on the same text: HF tokenizers 0.23.2 (Rust, through npm), encodeBatch over all
// lines. Thread count: RAYON_NUM_THREADS (run.sh sets 1 for the single-thread figure).
// Usage: node oracle_bench.js TOKENIZER_JSON TEXT_FILE
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require(path.join(__dirname, "../../tools/oracle/node_modules/tokenizers"));
(async () => {
  const tok = Tokenizer.fromFile(process.argv[2]);
  const text = fs.readFileSync(process.argv[3], "utf8");
  const bytes = Buffer.byteLength(text);
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  await tok.encode("warm up");
  let t0 = process.hrtime.bigint();
  const out = await tok.encodeBatch(lines);
  let s = Number(process.hrtime.bigint() - t0) / 1e9;
  let tokens = 0;
  for (const e of out) tokens += e.getLength();
  console.log(`oracle   encodeBatch, RAYON_NUM_THREADS=${process.env.RAYON_NUM_THREADS || "all"}: ${(bytes / 1e6 / s).toFixed(2).padStart(7)} MB/s  (${tokens} tokens, ${s.toFixed(2)} s)`);
})();
