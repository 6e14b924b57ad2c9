// Vocabulary trainers for pre-training from scratch. Both learn merges the way HuggingFace's BpeTrainer
// does (its WordPieceTrainer is the same algorithm with the "##" continuation prefix): words come from the
// tokenizer's own normalizer and pre-tokenizer, the most frequent adjacent pair is merged until the
// vocabulary is full or no pair reaches min_frequency. Ties are broken by the pair's strings, so results
// are deterministic. The vocabularies are written through Tokenizer::save, so HF loads them directly.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "bertfit/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bertfit {

namespace {

using WordCounts = std::unordered_map<std::string, int64_t>;

void for_each_line(const std::vector<std::string>& files, const TrainerProgress& progress,
                   const std::function<void(const std::string&)>& f) {
  if (files.empty()) throw ConfigError("vocabulary training needs at least one corpus file");
  int64_t total = 0, done = 0, reported = 0;
  for (const std::string& path : files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec) total += static_cast<int64_t>(size);
  }
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw FormatError(path + ": cannot open corpus file");
    std::string line;
    while (std::getline(in, line)) {
      f(line);
      done += static_cast<int64_t>(line.size()) + 1;
      if (progress && done - reported >= (1 << 20)) progress("read", reported = done, total);
    }
    if (in.bad()) throw FormatError(path + ": read error");
  }
  if (progress) progress("read", total, total);
}

// Symbols of each distinct word, merged in place; pair statistics kept incrementally.
class MergeTrainer {
 public:
  MergeTrainer(std::vector<std::string> vocab, std::string prefix)
      : vocab_(std::move(vocab)), prefix_(std::move(prefix)) {
    for (size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<int32_t>(i));
  }
  int32_t id(const std::string& s) {
    auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
    vocab_.push_back(s);
    ids_.emplace(s, static_cast<int32_t>(vocab_.size() - 1));
    return static_cast<int32_t>(vocab_.size() - 1);
  }
  bool has(const std::string& s) const { return ids_.count(s) != 0; }
  void add_word(std::vector<int32_t> symbols, int64_t count) {
    words_.push_back({std::move(symbols), count});
  }

  // Runs merges until the vocabulary has vocab_size entries; returns the merges (as strings) in order.
  std::vector<std::pair<std::string, std::string>> run(size_t vocab_size, int64_t min_frequency,
                                                       const TrainerProgress& progress) {
    // A display update every 1/200 of the merges (each merge is microseconds to milliseconds).
    const size_t every = std::max<size_t>(vocab_size / 200, 1);
    for (size_t w = 0; w < words_.size(); ++w) add_pairs(w, +1);
    for (const auto& [p, c] : counts_) push(p);
    std::vector<std::pair<std::string, std::string>> merges;
    while (vocab_.size() < vocab_size && !queue_.empty()) {
      const Entry top = queue_.top();
      queue_.pop();
      auto it = counts_.find(top.pair);
      if (it == counts_.end() || it->second != top.count) continue;  // stale
      if (top.count < min_frequency) break;
      const int32_t a = static_cast<int32_t>(top.pair >> 32),
                    b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
      const std::string& rb = vocab_[b];
      const std::string merged =
          vocab_[a] +
          (!prefix_.empty() && rb.compare(0, prefix_.size(), prefix_) == 0 ? rb.substr(prefix_.size()) : rb);
      const int32_t m = id(merged);
      merges.emplace_back(vocab_[a], vocab_[b]);
      if (progress && vocab_.size() % every == 0)
        progress("merge", static_cast<int64_t>(vocab_.size()), static_cast<int64_t>(vocab_size));
      std::vector<size_t> where(where_[top.pair].begin(), where_[top.pair].end());
      std::sort(where.begin(), where.end());
      std::set<uint64_t> touched;
      for (size_t w : where) {
        std::vector<int32_t>& s = words_[w].symbols;
        bool has_pair = false;
        for (size_t i = 0; i + 1 < s.size(); ++i) has_pair |= s[i] == a && s[i + 1] == b;
        if (!has_pair) continue;
        add_pairs(w, -1, &touched);
        std::vector<int32_t> out;
        for (size_t i = 0; i < s.size(); ++i) {
          if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
            out.push_back(m);
            ++i;
          } else {
            out.push_back(s[i]);
          }
        }
        s.swap(out);
        add_pairs(w, +1, &touched);
      }
      for (uint64_t p : touched) push(p);
    }
    return merges;
  }
  const std::vector<std::string>& vocab() const { return vocab_; }

 private:
  struct Word {
    std::vector<int32_t> symbols;
    int64_t count;
  };
  struct Entry {
    int64_t count;
    uint64_t pair;
  };
  struct Less {  // priority: higher count, then the smaller (left, right) strings
    const MergeTrainer* t;
    bool operator()(const Entry& x, const Entry& y) const {
      if (x.count != y.count) return x.count < y.count;
      const auto& v = t->vocab_;
      const auto xa = v[x.pair >> 32], ya = v[y.pair >> 32];
      if (xa != ya) return xa > ya;
      return v[x.pair & 0xFFFFFFFFu] > v[y.pair & 0xFFFFFFFFu];
    }
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void add_pairs(size_t w, int sign, std::set<uint64_t>* touched = nullptr) {
    const Word& word = words_[w];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const uint64_t k = key(word.symbols[i], word.symbols[i + 1]);
      counts_[k] += sign * word.count;
      if (sign > 0) where_[k].insert(w);
      if (touched) touched->insert(k);
    }
  }
  void push(uint64_t p) {
    auto it = counts_.find(p);
    if (it != counts_.end() && it->second > 0) queue_.push(Entry{it->second, p});
  }

  std::vector<std::string> vocab_;
  std::string prefix_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> counts_;
  std::unordered_map<uint64_t, std::unordered_set<size_t>> where_;
  std::priority_queue<Entry, std::vector<Entry>, Less> queue_{Less{this}};
};

std::shared_ptr<TokenizerImpl> bert_impl(const WordPieceTrainerOptions& o) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = "train_wordpiece";
  tok::BertNormalizerConfig n;
  n.lowercase = o.lowercase;
  n.handle_chinese_chars = o.handle_chinese_chars;
  t->normalizer = n;
  t->pre_tokenizer = tok::PreTokenizerKind::BERT;
  t->model_kind = tok::ModelKind::WORDPIECE;
  t->decoder_json = R"({"type":"WordPiece","prefix":"##","cleanup":true})";
  return t;
}

void check_specials(const std::vector<std::string>& specials, int vocab_size) {
  std::set<std::string> seen;
  for (const std::string& s : specials)
    if (s.empty() || !seen.insert(s).second)
      throw ConfigError("special token '" + s + "' is empty or repeated");
  if (vocab_size <= static_cast<int>(specials.size()))
    throw ConfigError("vocab_size " + std::to_string(vocab_size) +
                      " must exceed the number of special tokens");
}

std::shared_ptr<TokenizerImpl> finish(std::shared_ptr<TokenizerImpl> t, const std::vector<std::string>& vocab,
                                      const std::vector<std::string>& specials) {
  for (size_t i = 0; i < vocab.size(); ++i) {
    t->vocab.insert(vocab[i], static_cast<int32_t>(i));
    t->vocab_r.push_back(vocab[i]);
  }
  for (const std::string& s : specials) {
    tok::AddedToken a;
    a.content = s;
    a.id = t->vocab.find(s);
    a.special = true;
    a.normalized = false;
    a.lstrip = s == "<mask>";  // RoBERTa's mask absorbs the space before it
    t->added.push_back(a);
  }
  return t;
}

}  // namespace

void train_wordpiece(const std::vector<std::string>& corpus_files, const WordPieceTrainerOptions& o,
                     const std::string& out_dir) {
  check_specials(o.special_tokens, o.vocab_size);
  auto t = bert_impl(o);
  WordCounts counts;
  std::u32string orig;
  tok::NormText norm;
  for_each_line(corpus_files, o.progress, [&](const std::string& line) {
    orig.clear();
    tok::decode_utf8_lossy(line, orig);
    norm.clear();
    t->normalize(orig, 0, orig.size(), norm);
    std::string w;
    auto flush = [&] {
      if (!w.empty()) ++counts[w];
      w.clear();
    };
    for (char32_t c : norm.chars) {
      const uint8_t f = tok::char_flags(c);
      if (f & (tok::CHAR_WHITESPACE | tok::CHAR_PUNCT)) {
        flush();
        if (f & tok::CHAR_PUNCT) tok::append_utf8(c, w), flush();
      } else {
        tok::append_utf8(c, w);
      }
    }
    flush();
  });
  // Alphabet: the limit_alphabet most frequent characters (ties by code point), word-initial and "##" forms.
  std::map<char32_t, int64_t> char_counts;
  for (const auto& [w, c] : counts)
    for (char32_t ch : tok::decode_utf8_lossy(w)) char_counts[ch] += c;
  std::vector<std::pair<int64_t, char32_t>> by_freq;
  for (const auto& [ch, c] : char_counts) by_freq.emplace_back(-c, ch);
  std::sort(by_freq.begin(), by_freq.end());
  if (by_freq.size() > static_cast<size_t>(o.limit_alphabet))
    by_freq.resize(static_cast<size_t>(o.limit_alphabet));
  std::set<char32_t> alphabet;
  for (const auto& [c, ch] : by_freq) alphabet.insert(ch);
  std::vector<std::string> vocab = o.special_tokens;
  for (char32_t ch : alphabet) vocab.push_back(tok::to_utf8(std::u32string(1, ch)));
  for (char32_t ch : alphabet) vocab.push_back("##" + tok::to_utf8(std::u32string(1, ch)));
  MergeTrainer trainer(vocab, "##");
  std::vector<std::string> sorted_words;
  for (const auto& [w, c] : counts) sorted_words.push_back(w);
  std::sort(sorted_words.begin(), sorted_words.end());
  for (const std::string& w : sorted_words) {
    const std::u32string cs = tok::decode_utf8_lossy(w);
    if (cs.size() > 100) continue;  // WordPiece turns these into [UNK] anyway
    std::vector<int32_t> syms;
    bool ok = true;
    for (size_t i = 0; i < cs.size() && ok; ++i) {
      if (!alphabet.count(cs[i]))
        ok = false;
      else
        syms.push_back(trainer.id((i ? "##" : "") + tok::to_utf8(std::u32string(1, cs[i]))));
    }
    if (ok) trainer.add_word(std::move(syms), counts[w]);
  }
  trainer.run(static_cast<size_t>(o.vocab_size), o.min_frequency, o.progress);
  if (o.progress) o.progress("merge", o.vocab_size, o.vocab_size);
  finish(t, trainer.vocab(), o.special_tokens);
  t->unk_token = t->wp_unk_token = o.special_tokens.size() > 1 ? "[UNK]" : "";
  if (t->vocab.find("[UNK]") < 0) t->unk_token.clear();
  tok::PostProcessorConfig& p = t->post;
  const int32_t cls = t->vocab.find("[CLS]"), sep = t->vocab.find("[SEP]");
  if (cls < 0 || sep < 0)
    throw ConfigError("train_wordpiece: the special tokens must include [CLS] and [SEP]");
  p.kind = tok::PostKind::TEMPLATE;
  p.single = {{true, "[CLS]", 0}, {false, "A", 0}, {true, "[SEP]", 0}};
  p.pair = {{true, "[CLS]", 0}, {false, "A", 0}, {true, "[SEP]", 0}, {false, "B", 1}, {true, "[SEP]", 1}};
  p.specials["[CLS]"] = tok::TemplateSpecial{{cls}, {"[CLS]"}};
  p.specials["[SEP]"] = tok::TemplateSpecial{{sep}, {"[SEP]"}};
  t->cls_token = "[CLS]", t->sep_token = "[SEP]";
  if (t->vocab.find("[PAD]") >= 0) t->pad_token = "[PAD]";
  if (t->vocab.find("[MASK]") >= 0) t->mask_token = "[MASK]";
  t->finalize();
  Tokenizer(t).save(out_dir);
}

void train_bpe(const std::vector<std::string>& corpus_files, const BpeTrainerOptions& o,
               const std::string& out_dir) {
  check_specials(o.special_tokens, o.vocab_size);
  tok::ByteLevelRegex regex;
  WordCounts counts;
  std::vector<std::pair<size_t, size_t>> parts;
  for_each_line(corpus_files, o.progress, [&](const std::string& raw) {
    // Lines are valid UTF-8 after lossy decoding, as the tokenizer sees them.
    std::string line = tok::to_utf8(tok::decode_utf8_lossy(raw));
    if (o.add_prefix_space && !line.empty() && line[0] != ' ') line = " " + line;
    parts.clear();
    regex.split(reinterpret_cast<const uint8_t*>(line.data()), line.size(), parts);
    for (const auto& [b, e] : parts) ++counts[line.substr(b, e - b)];
  });
  std::vector<std::string> vocab = o.special_tokens;
  std::vector<std::string> byte_syms(256);
  for (int b = 0; b < 256; ++b) {
    tok::append_utf8(tok::byte_to_char(static_cast<uint8_t>(b)), byte_syms[b]);
  }
  std::vector<std::string> alphabet = byte_syms;
  std::sort(alphabet.begin(), alphabet.end());
  for (const std::string& s : alphabet) vocab.push_back(s);
  MergeTrainer trainer(vocab, "");
  std::vector<std::string> sorted_words;
  for (const auto& [w, c] : counts) sorted_words.push_back(w);
  std::sort(sorted_words.begin(), sorted_words.end());
  for (const std::string& w : sorted_words) {
    std::vector<int32_t> syms;
    for (unsigned char ch : w) syms.push_back(trainer.id(byte_syms[ch]));
    trainer.add_word(std::move(syms), counts[w]);
  }
  auto merges = trainer.run(static_cast<size_t>(o.vocab_size), o.min_frequency, o.progress);
  if (o.progress) o.progress("merge", o.vocab_size, o.vocab_size);
  auto t = std::make_shared<TokenizerImpl>();
  t->source = "train_bpe";
  t->model_kind = tok::ModelKind::BPE;
  t->pre_tokenizer = tok::PreTokenizerKind::BYTE_LEVEL;
  t->bl_add_prefix_space = o.add_prefix_space;
  t->merges = merges;
  t->decoder_json = R"({"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true})";
  finish(t, trainer.vocab(), o.special_tokens);
  auto role = [&](std::string& dst, const char* name) {
    if (t->vocab.find(name) >= 0) dst = name;
  };
  role(t->bos_token, "<s>"), role(t->cls_token, "<s>"), role(t->eos_token, "</s>"),
      role(t->sep_token, "</s>");
  role(t->unk_token, "<unk>"), role(t->pad_token, "<pad>"), role(t->mask_token, "<mask>");
  if (t->cls_token.empty() || t->sep_token.empty())
    throw ConfigError("train_bpe: the special tokens must include <s> and </s>");
  tok::PostProcessorConfig& p = t->post;
  p.kind = tok::PostKind::ROBERTA;
  p.cls_token = "<s>", p.cls_id = t->vocab.find("<s>"), p.sep_token = "</s>",
  p.sep_id = t->vocab.find("</s>");
  p.trim_offsets = true;
  p.add_prefix_space = o.add_prefix_space;
  t->finalize();
  Tokenizer(t).save(out_dir);
}

}  // namespace bertfit
