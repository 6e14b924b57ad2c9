// `bertfit tokenize --model DIR`: what the model sees. Reads texts from stdin (one per line; with --pair, a
// tab separates the two texts) and prints each token's id, text and character offsets, or JSON lines.
// Every option takes both spellings (--max_length and --max-length), as the other commands' options.
// `bertfit train-tokenizer`: trains a WordPiece (BERT) or byte-level BPE (RoBERTa) vocabulary on text files
// and writes a HuggingFace tokenizer directory.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "bertfit/error.h"
#include "bertfit/tokenizer.h"
#include "cli/commands.h"
#include "data/utf8.h"
#include "tokenizer/unicode.h"
#include "train/encoded_data.h"
#include "train/progress.h"

namespace bertfit::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  bool pair = false, no_special = false, json = false;
  int max_length = 0, head_length = -1;  // -1: finetune's default (a quarter of the text tokens)
  std::string truncation = "head";
};

// Shows control characters and spaces visibly in the table ("\n", "\t", "␠" is not used: keep bytes).
std::string visible(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20 || c == 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02X", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void print_table(const Encoding& e, const std::string& a, const std::string& b) {
  const std::u32string ua = tok::decode_utf8_lossy(a), ub = tok::decode_utf8_lossy(b);
  std::printf("%5s %8s %4s %4s %12s  %-24s %s\n", "index", "id", "type", "word", "offsets", "token", "text");
  for (size_t i = 0; i < e.size(); ++i) {
    const auto [s, t] = e.offsets[i];
    const std::u32string& src = e.sequence_ids[i] == 1 ? ub : ua;
    std::string text;
    if (!e.special_tokens_mask[i] && s <= t && t <= src.size()) text = tok::to_utf8(src.substr(s, t - s));
    char off[32];
    std::snprintf(off, sizeof off, "[%u,%u)", s, t);
    std::printf("%5zu %8d %4d %4d %12s  %-24s %s\n", i, e.ids[i], e.type_ids[i], e.word_ids[i], off,
                visible(e.tokens[i]).c_str(),
                e.special_tokens_mask[i] ? "(special)" : ("'" + visible(text) + "'").c_str());
  }
}

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tok = Tokenizer::from_directory(o.model);
  const Truncation how = parse_truncation(o.truncation);
  const int head_length =
      resolve_head_length(o.head_length, o.max_length, static_cast<int>(tok.num_special_tokens(false)));
  if (o.max_length > 0 && !o.no_special && !o.pair) {
    EncodeOptions check;
    check.max_seq_length = o.max_length;
    check.truncation = how;
    check.head_length = head_length;
    check_encode_options(tok, check,
                         "--max_length");  // head+tail whose head leaves no room for the tail is an error
  }
  std::string line;
  bool first = true;
  for (int64_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // As the data readers and serve: invalid UTF-8 is an error, not bytes the normaliser drops unseen.
    if (const size_t bad = data::utf8_invalid_offset(line); bad != std::string::npos)
      throw FormatError("stdin:" + std::to_string(line_no) + ": invalid UTF-8 at byte " +
                        std::to_string(bad + 1));
    std::string a = line, b;
    if (o.pair) {
      const size_t tab = line.find('\t');
      if (tab == std::string::npos)
        throw ConfigError("--pair: input line has no tab separating the two texts");
      a = line.substr(0, tab), b = line.substr(tab + 1);
    }
    Encoding e;
    if (o.max_length > 0 && !o.no_special) {
      e = o.pair ? encode_pair_truncated(tok, a, b, o.max_length)
                 : encode_truncated(tok, a, o.max_length, how, head_length);
    } else {
      e = o.pair ? tok.encode_pair(a, b, !o.no_special) : tok.encode(a, !o.no_special);
    }
    if (o.json) {
      nlohmann::json j;
      j["ids"] = e.ids;
      j["tokens"] = e.tokens;
      j["type_ids"] = e.type_ids;
      j["offsets"] = e.offsets;
      j["word_ids"] = e.word_ids;
      j["special_tokens_mask"] = e.special_tokens_mask;
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      if (!first) std::printf("\n");
      print_table(e, a, b);
    }
    first = false;
  }
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd =
      app.add_subcommand("tokenize", "Show the tokens, ids and offsets the model sees for text on stdin");
  cmd->add_option(option_names("model"), o->model,
                  "Model or tokenizer directory (tokenizer.json, or vocab.txt / vocab.json + merges.txt)")
      ->required();
  cmd->add_flag(option_names("pair"), o->pair,
                "Each input line is two texts separated by a tab (sentence pairs)");
  cmd->add_flag(option_names("no_special"), o->no_special, "Do not add [CLS]/[SEP] (<s>/</s>)");
  cmd->add_flag(option_names("json"), o->json, "Print one JSON object per line instead of a table");
  cmd->add_option(option_names("max_length"), o->max_length,
                  "Truncate to this many tokens, special tokens included (0: no limit)");
  cmd->add_option(option_names("truncation"), o->truncation,
                  "head | tail | head_tail (single texts; pairs use longest_first)");
  cmd->add_option(option_names("head_length"), o->head_length,
                  "Tokens kept from the start with head_tail (default: as finetune, a quarter of the text "
                  "tokens: the paper's 128 at --max_length 512)");
  cmd->callback([o] { run_tokenize(*o); });

  struct TrainOptions {
    std::vector<std::string> corpus;
    std::string out, type = "wordpiece";
    int vocab_size = 30522, min_frequency = 2, limit_alphabet = 1000;
    bool cased = false, no_chinese_chars = false, add_prefix_space = false;
  };
  auto t = std::make_shared<TrainOptions>();
  auto* train = app.add_subcommand("train-tokenizer",
                                   "Train a WordPiece (BERT) or byte-level BPE (RoBERTa) vocabulary");
  train->add_option(option_names("corpus"), t->corpus, "UTF-8 text files, one sentence or document per line")
      ->required();
  train->add_option(option_names("out"), t->out, "Output directory (tokenizer.json, vocab files, configs)")
      ->required();
  train->add_option(option_names("type"), t->type, "wordpiece | bpe")
      ->check(CLI::IsMember({"wordpiece", "bpe"}));
  train->add_option(option_names("vocab_size"), t->vocab_size, "Vocabulary size, special tokens included");
  train->add_option(option_names("min_frequency"), t->min_frequency,
                    "Pairs seen fewer times are never merged");
  train->add_option(option_names("limit_alphabet"), t->limit_alphabet,
                    "WordPiece: keep this many initial characters at most");
  train->add_flag(option_names("cased"), t->cased,
                  "WordPiece: keep case and accents (default: lowercase, strip accents)");
  train->add_flag(option_names("no_chinese_chars"), t->no_chinese_chars,
                  "WordPiece: do not split CJK characters apart");
  train->add_flag(option_names("add_prefix_space"), t->add_prefix_space, "BPE: add a space before each text");
  train->callback([t] {
    // Reading the corpus (MiB) and the merges (vocabulary entries), each with rate and ETA.
    auto progress = std::make_shared<PhaseProgress>("train-tokenizer");
    auto report = [progress](const std::string& phase, int64_t done, int64_t total) {
      (*progress)(phase, done, total);
    };
    if (t->type == "wordpiece") {
      WordPieceTrainerOptions o;
      o.vocab_size = t->vocab_size, o.lowercase = !t->cased, o.handle_chinese_chars = !t->no_chinese_chars;
      o.min_frequency = t->min_frequency, o.limit_alphabet = t->limit_alphabet;
      o.progress = report;
      train_wordpiece(t->corpus, o, t->out);
    } else {
      BpeTrainerOptions o;
      o.vocab_size = t->vocab_size, o.min_frequency = t->min_frequency,
      o.add_prefix_space = t->add_prefix_space;
      o.progress = report;
      train_bpe(t->corpus, o, t->out);
    }
    progress->finish();
    const Tokenizer tok = Tokenizer::from_directory(t->out);
    std::printf("wrote %s: %lld tokens\n", t->out.c_str(), static_cast<long long>(tok.vocab_size()));
  });
}

}  // namespace bertfit::cli
