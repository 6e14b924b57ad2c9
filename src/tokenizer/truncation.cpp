// Token-level truncation and chunking, shared by every command (the paper's long-text strategies: head,
// tail, head+tail; consecutive chunks). The text is encoded without special tokens, cut, and only then
// wrapped by the post-processor, so each result fits max_length exactly, specials included. HEAD and TAIL
// equal HF's truncation to the right / left; pairs follow HF's longest_first (utils/truncation.rs).
#include <algorithm>

#include "bertfit/error.h"
#include "bertfit/tokenizer.h"

namespace bertfit {

namespace {

// Tokens [b, e) of `src` appended to `dst`.
void append_range(Encoding& dst, const Encoding& src, size_t b, size_t e) {
  auto add = [&](auto& d, const auto& s) { d.insert(d.end(), s.begin() + b, s.begin() + e); };
  add(dst.ids, src.ids);
  add(dst.type_ids, src.type_ids);
  add(dst.attention_mask, src.attention_mask);
  add(dst.special_tokens_mask, src.special_tokens_mask);
  add(dst.offsets, src.offsets);
  add(dst.tokens, src.tokens);
  add(dst.word_ids, src.word_ids);
  add(dst.sequence_ids, src.sequence_ids);
}

Encoding slice(const Encoding& src, size_t b, size_t e) {
  Encoding out;
  append_range(out, src, b, e);
  return out;
}

// Tokens left for text; at least `min_room` (chunks need 1, truncation may keep only the specials).
int content_room(const Tokenizer& tok, int max_length, bool pair, int min_room = 0) {
  const int room = max_length - tok.num_special_tokens(pair);
  if (room < min_room)
    throw ConfigError("max_length " + std::to_string(max_length) + " leaves no room for text next to the " +
                      std::to_string(tok.num_special_tokens(pair)) + " special tokens");
  return room;
}

}  // namespace

Truncation parse_truncation(std::string_view name) {
  if (name == "head") return Truncation::HEAD;
  if (name == "tail") return Truncation::TAIL;
  if (name == "head_tail" || name == "head+tail" || name == "head-tail") return Truncation::HEAD_TAIL;
  throw ConfigError("unknown value \"" + std::string(name) + "\" (choices: head, tail, head_tail)");
}

Encoding truncate_sequence(const Tokenizer& tok, Encoding e, int max_length, Truncation how,
                           int head_length) {
  const size_t room = static_cast<size_t>(content_room(tok, max_length, false));
  const size_t n = e.size();
  if (n > room) {
    switch (how) {
      case Truncation::HEAD:
        e = slice(e, 0, room);
        break;
      case Truncation::TAIL:
        e = slice(e, n - room, n);
        break;
      case Truncation::HEAD_TAIL: {
        const size_t head = std::min(room, static_cast<size_t>(std::max(0, head_length)));
        Encoding cut = slice(e, 0, head);
        append_range(cut, e, n - (room - head), n);
        e = std::move(cut);
        break;
      }
    }
  }
  return tok.post_process(std::move(e), nullptr, true);
}

Encoding encode_truncated(const Tokenizer& tok, std::string_view text, int max_length, Truncation how,
                          int head_length) {
  content_room(tok, max_length, false);  // a bad max_length is refused before any tokenizing
  return truncate_sequence(tok, tok.encode_sequence(text), max_length, how, head_length);
}

Encoding truncate_pair(const Tokenizer& tok, Encoding ea, Encoding only_b, int max_length) {
  const size_t target = static_cast<size_t>(content_room(tok, max_length, true));
  // tokenizers 0.23.2 stops tokenizing a sequence at the end of the word holding its max_length-th token
  // (measured with the oracle: the lengths it compares below are capped that way), then applies
  // longest_first to the room left by the special tokens.
  auto capped = [&](const Encoding& e) {
    const size_t cap = static_cast<size_t>(max_length);
    if (e.size() <= cap || cap == 0) return e.size();
    size_t k = cap;
    while (k < e.size() && e.word_ids[k] == e.word_ids[cap - 1]) ++k;
    return k;
  };
  size_t n1 = capped(ea), n2 = capped(only_b);
  if (n1 + n2 > target) {
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);  // n1: the shorter
    n2 = n1 > target ? n1 : std::max(n1, target - n1);
    if (n1 + n2 > target) {  // both must be cut: half each, the odd token to the longer
      n1 = target / 2;
      n2 = n1 + target % 2;
    }
    if (swap) std::swap(n1, n2);
    ea = slice(ea, 0, std::min(n1, ea.size()));
    only_b = slice(only_b, 0, std::min(n2, only_b.size()));
  }
  return tok.post_process(std::move(ea), &only_b, true);
}

Encoding encode_pair_truncated(const Tokenizer& tok, std::string_view a, std::string_view b, int max_length) {
  content_room(tok, max_length, true);
  return truncate_pair(tok, tok.encode_sequence(a), tok.encode_sequence(b, true), max_length);
}

std::vector<Encoding> chunk_sequence(const Tokenizer& tok, const Encoding& e, int chunk_length,
                                     int max_chunks) {
  const size_t room = static_cast<size_t>(content_room(tok, chunk_length, false, 1));
  std::vector<Encoding> out;
  for (size_t b = 0; b < e.size() || (b == 0 && out.empty()); b += room) {
    if (max_chunks > 0 && out.size() >= static_cast<size_t>(max_chunks)) break;
    out.push_back(tok.post_process(slice(e, b, std::min(e.size(), b + room)), nullptr, true));
    if (e.size() == 0) break;
  }
  return out;
}

std::vector<Encoding> encode_chunks(const Tokenizer& tok, std::string_view text, int chunk_length,
                                    int max_chunks) {
  content_room(tok, chunk_length, false, 1);
  return chunk_sequence(tok, tok.encode_sequence(text), chunk_length, max_chunks);
}

}  // namespace bertfit
