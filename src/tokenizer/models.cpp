// The BPE model (tokenizers/src/models/bpe/{model,word}.rs): the word's symbols start as single characters
// (here bytes, through GPT-2's byte map) and the adjacent pair of lowest merge rank is merged repeatedly,
// the leftmost first on equal rank, with a priority queue whose stale entries are skipped, exactly like
// Word::merge_all. Unknown characters become the unk token when the model has one (fused if fuse_unk) and
// are dropped otherwise.
#include <algorithm>
#include <string>
#include <unordered_map>

#include "bertfit/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bertfit {

namespace {

struct Symbol {
  int32_t id;
  uint32_t start, end;  // byte range in the word
  int32_t prev, next;   // linked list over live symbols; len 0 (start == end) marks a merged-away symbol
};

struct QueuedMerge {
  int32_t rank;
  uint32_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest: lowest rank first, then leftmost position.
  bool operator<(const QueuedMerge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

// Per-thread cache of finished words (HF's BPE keeps one too): natural text repeats words constantly, and a
// hit skips the merge loop. Keyed by the tokenizer's instance id so two tokenizers never share entries.
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<Symbol>> words;
  std::string key;
};
constexpr size_t kWordCacheCapacity = 50000;

}  // namespace

void TokenizerImpl::bpe_word(const uint8_t* bytes, const uint32_t* byte_align, size_t n, int32_t type_id,
                             int8_t seq, int32_t word, Encoding& out) const {
  if (n == 0) return;
  auto emit = [&](const std::vector<Symbol>& syms) {
    for (const Symbol& s : syms) {
      if (s.start == s.end) continue;
      out.ids.push_back(s.id);
      out.tokens.push_back(s.id < static_cast<int32_t>(vocab_r.size()) ? vocab_r[s.id] : std::string());
      out.offsets.emplace_back(byte_align[s.start], byte_align[s.end - 1] + 1);
      out.word_ids.push_back(word);
      out.type_ids.push_back(type_id);
      out.attention_mask.push_back(1);
      out.special_tokens_mask.push_back(0);
      out.sequence_ids.push_back(seq);
    }
  };
  thread_local WordCache cache;
  if (cache.owner != instance_id_) cache.words.clear(), cache.owner = instance_id_;
  cache.key.assign(reinterpret_cast<const char*>(bytes), n);
  if (auto hit = cache.words.find(cache.key); hit != cache.words.end()) return emit(hit->second);
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  const bool plain = bpe_prefix.empty() && bpe_suffix.empty();
  auto add_symbol = [&](int32_t id, uint32_t start, uint32_t end) {
    const int32_t idx = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, start, end, idx - 1, -1});
    if (idx > 0) symbols[idx - 1].next = idx;
  };
  if (bpe_ignore_merges) {
    std::string w;
    for (size_t i = 0; i < n; ++i) tok::append_utf8(tok::byte_to_char(bytes[i]), w);
    const int32_t id = vocab.find(w);
    if (id >= 0) {
      out.ids.push_back(id);
      out.tokens.push_back(vocab_r[id]);
      out.offsets.emplace_back(byte_align[0], byte_align[n - 1] + 1);
      out.word_ids.push_back(word);
      out.type_ids.push_back(type_id);
      out.attention_mask.push_back(1);
      out.special_tokens_mask.push_back(0);
      out.sequence_ids.push_back(seq);
      return;
    }
  }
  // Initial symbols, with the unk handling of BPE::merge_word.
  int32_t unk_start = -1, unk_end = -1;
  auto flush_unk = [&] {
    if (unk_start >= 0)
      add_symbol(unk_model_id_, static_cast<uint32_t>(unk_start), static_cast<uint32_t>(unk_end));
    unk_start = -1;
  };
  for (size_t i = 0; i < n; ++i) {
    int32_t id;
    if (plain) {
      id = byte_ids_[bytes[i]];
    } else {
      std::string s = i > 0 ? bpe_prefix : std::string();
      tok::append_utf8(tok::byte_to_char(bytes[i]), s);
      if (i + 1 == n) s += bpe_suffix;
      id = vocab.find(s);
    }
    if (id >= 0) {
      flush_unk();
      add_symbol(id, static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1));
    } else if (unk_model_id_ >= 0) {
      if (unk_start >= 0 && bpe_fuse_unk) {
        unk_end = static_cast<int32_t>(i + 1);
      } else {
        flush_unk();
        unk_start = static_cast<int32_t>(i), unk_end = static_cast<int32_t>(i + 1);
      }
    }
  }
  flush_unk();
  if (!symbols.empty()) symbols.back().next = -1;

  auto lookup = [&](int32_t a, int32_t b) { return merge_map_.find(a, b); };
  // A binary heap in a reused per-thread buffer (no allocation per word once warm).
  thread_local std::vector<QueuedMerge> queue;
  queue.clear();
  auto push = [&](const QueuedMerge& m) {
    queue.push_back(m);
    std::push_heap(queue.begin(), queue.end());
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const int32_t* m = lookup(symbols[i].id, symbols[i + 1].id))
      push(QueuedMerge{m[0], static_cast<uint32_t>(i), m[1]});
  }
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end());
    const QueuedMerge top = queue.back();
    queue.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.start == cur.end || cur.next < 0) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    const int32_t* m = lookup(cur.id, right.id);
    if (m == nullptr || m[1] != top.new_id) continue;  // a stale entry
    cur.id = top.new_id;
    cur.end = right.end;
    cur.next = right.next;
    symbols[next_pos].end = symbols[next_pos].start;  // removed
    if (right.next >= 0) symbols[right.next].prev = static_cast<int32_t>(top.pos);
    if (cur.prev >= 0) {
      if (const int32_t* pm = lookup(symbols[cur.prev].id, cur.id))
        push(QueuedMerge{pm[0], static_cast<uint32_t>(cur.prev), pm[1]});
    }
    if (cur.next >= 0) {
      if (const int32_t* nm = lookup(cur.id, symbols[cur.next].id)) push(QueuedMerge{nm[0], top.pos, nm[1]});
    }
  }
  emit(symbols);
  if (cache.words.size() >= kWordCacheCapacity) cache.words.clear();
  std::vector<Symbol>& kept = cache.words[cache.key];
  for (const Symbol& s : symbols)
    if (s.start != s.end) kept.push_back(s);
}

}  // namespace bertfit
