// Golden files for bertfit's tokenizer parity tests, made with the oracle: HuggingFace's Rust tokenizers
// through the npm package tokenizers@0.23.2 (FORMATS.md 3). Regenerate when the oracle version changes.
//   node make_goldens.js cases TOKENIZER_JSON CASES.jsonl[.gz] OUT.jsonl.gz
//       one line per case of CASES: {"ids","types","offsets" (flat pairs),"words" (null -> -1),"special"}
//   node make_goldens.js scan TOKENIZER_JSON OUT.txt.gz
//       every Unicode scalar value in a short context: line k holds code points [256k, 256k+256) (no
//       surrogates), each as "a{c}b {c}1 " (scan_text() below; tests/tokenizer rebuilds the same text),
//       encoded without special tokens. Stored as "CRC32HEX LENGTH" of the row's JSON text (the full rows of
//       the byte-level scan would take 35 MB); the test builds the same JSON text and compares.
//   node make_goldens.js scan-block TOKENIZER_JSON K     prints block K's full row (to debug a mismatch)
//   node make_goldens.js truncation TOKENIZER_JSON CASES.jsonl[.gz] OUT.jsonl.gz
//       the first 400 cases, cut by HF's truncation to max_length 4 + (i % 7) * 9: pairs with longest_first,
//       single texts from the right (bertfit's HEAD) on even i and from the left (TAIL) on odd i
//   node make_goldens.js lines TOKENIZER_JSON TEXT[.gz] OUT.jsonl.gz
//       each line of a plain text file (a training corpus) as one case, with special tokens
//   node make_goldens.js bert-json VOCAB_TXT LOWERCASE(true|false) OUT_TOKENIZER_JSON
//       a BERT tokenizer.json around a vocab.txt, as transformers' BertConverter writes it
"use strict";
const fs = require("fs");
const zlib = require("zlib");
const { Tokenizer } = require("tokenizers");

// Code points left out of the scan, with the reason (tests/fixtures/tokenizer/scan-exclusions.txt): only
// characters of Unicode 15 and later, where the oracle's bundled Oniguruma / Rust std (Unicode 16) and
// Debian's ICU 72 / Oniguruma 6.9.8 (Unicode 15.0 / 14.0) disagree (FORMATS.md 3.4).
const EXCLUDED = (() => {
  const ex = new Set();
  const file = require("path").join(__dirname, "../../tests/fixtures/tokenizer/scan-exclusions.txt");
  if (!fs.existsSync(file)) return ex;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = /^([0-9A-Fa-f]+)(?:-([0-9A-Fa-f]+))?\s/.exec(line + " ");
    if (!m) continue;
    const lo = parseInt(m[1], 16), hi = m[2] ? parseInt(m[2], 16) : lo;
    for (let c = lo; c <= hi; c++) ex.add(c);
  }
  return ex;
})();

function scan_text(k) {
  let s = "";
  for (let c = k * 256; c < k * 256 + 256; c++) {
    if ((c >= 0xd800 && c <= 0xdfff) || EXCLUDED.has(c)) continue;
    const ch = String.fromCodePoint(c);
    s += "a" + ch + "b " + ch + "1 ";
  }
  return s;
}

function row(e) {
  return JSON.stringify({
    ids: e.getIds(),
    types: e.getTypeIds(),
    offsets: e.getOffsets().flat(),
    words: e.getWordIds().map((w) => (w === null || w === undefined ? -1 : w)),
    special: e.getSpecialTokensMask(),
  });
}

function read_lines(path) {
  let buf = fs.readFileSync(path);
  if (path.endsWith(".gz")) buf = zlib.gunzipSync(buf);
  return buf.toString("utf8").split("\n").filter((l) => l.length > 0);
}

function write_gz(path, lines) {
  fs.writeFileSync(path + ".tmp", zlib.gzipSync(Buffer.from(lines.join("\n") + "\n"), { level: 9 }));
  fs.renameSync(path + ".tmp", path);
}

function bert_json(vocab_txt, lowercase) {
  const lines = fs.readFileSync(vocab_txt, "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const vocab = {};
  lines.forEach((t, i) => (vocab[t] = i));
  const sp = (t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(sp).sort((a, b) => a.id - b.id),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
             { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [vocab["[CLS]"]], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [vocab["[SEP]"]], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
}

async function main() {
  const [mode, ...a] = process.argv.slice(2);
  if (mode === "bert-json") {
    fs.writeFileSync(a[2], JSON.stringify(bert_json(a[0], a[1] === "true"), null, 1));
    return;
  }
  const tok = Tokenizer.fromFile(a[0]);
  const out = [];
  if (mode === "cases") {
    for (const line of read_lines(a[1])) {
      const c = JSON.parse(line);
      const opts = { addSpecialTokens: c.special !== false };
      out.push(row(c.pair !== undefined ? await tok.encode(c.text, c.pair, opts) : await tok.encode(c.text, null, opts)));
    }
    write_gz(a[2], out);
  } else if (mode === "lines") {
    for (const line of read_lines(a[1])) out.push(row(await tok.encode(line, null)));
    write_gz(a[2], out);
  } else if (mode === "truncation") {
    const lines = read_lines(a[1]).slice(0, 400);
    for (let i = 0; i < lines.length; i++) {
      const c = JSON.parse(lines[i]);
      const maxLength = 4 + (i % 7) * 9;
      tok.setTruncation(maxLength, { strategy: "LongestFirst", direction: c.pair === undefined && i % 2 ? "left" : "right" });
      out.push(row(c.pair !== undefined ? await tok.encode(c.text, c.pair) : await tok.encode(c.text, null)));
    }
    write_gz(a[2], out);
  } else if (mode === "scan") {
    for (let k = 0; k < 0x110000 / 256; k++) {
      const r = row(await tok.encode(scan_text(k), null, { addSpecialTokens: false }));
      out.push(zlib.crc32(r).toString(16) + " " + Buffer.byteLength(r));
    }
    write_gz(a[1], out);
  } else if (mode === "scan-block") {
    console.log(row(await tok.encode(scan_text(Number(a[1])), null, { addSpecialTokens: false })));
  } else {
    throw new Error("usage: see the header of make_goldens.js");
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
