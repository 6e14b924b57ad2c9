// Post-processing (special tokens, type ids, RoBERTa's offset trimming) and the public Tokenizer API.
// Post-processors follow tokenizers/src/processors/{template,bert,roberta,byte_level}.rs.
#include <algorithm>
#include <thread>

#include "bertfit/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bertfit {

namespace {

void append(Encoding& dst, const Encoding& src, int32_t type_id, bool set_type) {
  dst.ids.insert(dst.ids.end(), src.ids.begin(), src.ids.end());
  dst.tokens.insert(dst.tokens.end(), src.tokens.begin(), src.tokens.end());
  dst.offsets.insert(dst.offsets.end(), src.offsets.begin(), src.offsets.end());
  dst.word_ids.insert(dst.word_ids.end(), src.word_ids.begin(), src.word_ids.end());
  if (set_type) {
    dst.type_ids.insert(dst.type_ids.end(), src.size(), type_id);
  } else {
    dst.type_ids.insert(dst.type_ids.end(), src.type_ids.begin(), src.type_ids.end());
  }
  dst.attention_mask.insert(dst.attention_mask.end(), src.attention_mask.begin(), src.attention_mask.end());
  dst.special_tokens_mask.insert(dst.special_tokens_mask.end(), src.special_tokens_mask.begin(),
                                 src.special_tokens_mask.end());
  dst.sequence_ids.insert(dst.sequence_ids.end(), src.sequence_ids.begin(), src.sequence_ids.end());
}

void append_special(Encoding& dst, int32_t id, const std::string& token, int32_t type_id) {
  dst.ids.push_back(id);
  dst.tokens.push_back(token);
  dst.offsets.emplace_back(0, 0);
  dst.word_ids.push_back(-1);
  dst.type_ids.push_back(type_id);
  dst.attention_mask.push_back(1);
  dst.special_tokens_mask.push_back(1);
  dst.sequence_ids.push_back(-1);
}

// byte_level.rs process_offsets: move offsets past the spaces ('Ġ') a token starts or ends with.
void trim_offsets(Encoding& e, bool add_prefix_space) {
  for (size_t i = 0; i < e.size(); ++i) {
    const std::u32string t = tok::decode_utf8_lossy(e.tokens[i]);
    auto space = [](char32_t c) { return c == 0x120 || (tok::char_flags(c) & tok::CHAR_WHITESPACE); };
    size_t leading = 0, trailing = 0;
    while (leading < t.size() && space(t[leading])) ++leading;
    while (trailing < t.size() && space(t[t.size() - 1 - trailing])) ++trailing;
    if (leading == 0 && trailing == 0) continue;
    auto& [start, end] = e.offsets[i];
    if (leading > 0) {
      const bool is_first = i == 0 || start == 0;
      if (is_first && add_prefix_space && leading == 1) leading = 0;
      start = std::min<uint32_t>(start + static_cast<uint32_t>(leading), end);
    }
    if (trailing > 0 && end >= trailing)
      end = std::max<uint32_t>(end - static_cast<uint32_t>(trailing), start);
  }
}

}  // namespace

void Encoding::pad_to(size_t length, int32_t pad_id, const std::string& pad_token) {
  while (ids.size() < length) {
    ids.push_back(pad_id);
    tokens.push_back(pad_token);
    offsets.emplace_back(0, 0);
    word_ids.push_back(-1);
    type_ids.push_back(0);
    attention_mask.push_back(0);
    special_tokens_mask.push_back(1);
    sequence_ids.push_back(-1);
  }
}

int TokenizerImpl::num_special_tokens(bool pair) const {
  switch (post.kind) {
    case tok::PostKind::BERT:
      return pair ? 3 : 2;
    case tok::PostKind::ROBERTA:
      return pair ? 4 : 2;
    case tok::PostKind::TEMPLATE: {
      int n = 0;
      for (const tok::TemplateItem& it : pair ? post.pair : post.single) {
        if (!it.is_special) continue;
        auto s = post.specials.find(it.id);
        if (s != post.specials.end()) n += static_cast<int>(s->second.ids.size());
      }
      return n;
    }
    default:
      return 0;
  }
}

Encoding TokenizerImpl::post_process(Encoding a, const Encoding* b_in, bool add_special_tokens) const {
  Encoding b_copy;
  if (b_in) b_copy = *b_in;
  Encoding* b = b_in ? &b_copy : nullptr;
  Encoding out;
  switch (post.kind) {
    case tok::PostKind::NONE:
    case tok::PostKind::BYTE_LEVEL:
      if (post.kind == tok::PostKind::BYTE_LEVEL && post.trim_offsets) {
        trim_offsets(a, post.add_prefix_space);
        if (b) trim_offsets(*b, post.add_prefix_space);
      }
      append(out, a, 0, false);
      if (b) append(out, *b, 1, false);
      return out;
    case tok::PostKind::BERT:
      if (add_special_tokens) append_special(out, post.cls_id, post.cls_token, 0);
      append(out, a, 0, true);
      if (add_special_tokens) append_special(out, post.sep_id, post.sep_token, 0);
      if (b) {
        append(out, *b, 1, true);
        if (add_special_tokens) append_special(out, post.sep_id, post.sep_token, 1);
      }
      return out;
    case tok::PostKind::ROBERTA:  // every type id is 0 ("Roberta is weird")
      if (post.trim_offsets) {
        trim_offsets(a, post.add_prefix_space);
        if (b) trim_offsets(*b, post.add_prefix_space);
      }
      if (add_special_tokens) append_special(out, post.cls_id, post.cls_token, 0);
      append(out, a, 0, true);
      if (add_special_tokens) append_special(out, post.sep_id, post.sep_token, 0);
      if (b) {
        if (add_special_tokens) append_special(out, post.sep_id, post.sep_token, 0);
        append(out, *b, 0, true);
        if (add_special_tokens) append_special(out, post.sep_id, post.sep_token, 0);
      }
      return out;
    case tok::PostKind::TEMPLATE:
      for (const tok::TemplateItem& it : b ? post.pair : post.single) {
        if (!it.is_special) {
          append(out, it.id == "A" ? a : *b, it.type_id, true);
        } else if (add_special_tokens) {
          const tok::TemplateSpecial& s = post.specials.at(it.id);
          for (size_t k = 0; k < s.ids.size(); ++k) append_special(out, s.ids[k], s.tokens[k], it.type_id);
        }
      }
      return out;
  }
  return out;
}

// ---- public API

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  Encoding a;
  impl_->encode_sequence(text, 0, 0, a);
  return impl_->post_process(std::move(a), nullptr, add_special_tokens);
}

Encoding Tokenizer::encode_pair(std::string_view a, std::string_view b, bool add_special_tokens) const {
  Encoding ea, eb;
  impl_->encode_sequence(a, 0, 0, ea);
  impl_->encode_sequence(b, 1, 1, eb);
  return impl_->post_process(std::move(ea), &eb, add_special_tokens);
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts, int threads,
                                              bool add_special_tokens) const {
  std::vector<Encoding> out(texts.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), std::max<size_t>(1, texts.size())));
  if (threads <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  // Interleaved assignment: neighbouring texts have similar lengths, so every thread gets a fair share
  // without a shared counter. The first exception (if any) is rethrown after joining.
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (size_t i = static_cast<size_t>(t); i < texts.size(); i += static_cast<size_t>(threads))
          out[i] = encode(texts[i], add_special_tokens);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
      }
    });
  }
  for (std::thread& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

Encoding Tokenizer::encode_sequence(std::string_view text, bool second) const {
  Encoding e;
  impl_->encode_sequence(text, second ? 1 : 0, second ? 1 : 0, e);
  return e;
}

Encoding Tokenizer::post_process(Encoding a, const Encoding* b, bool add_special_tokens) const {
  return impl_->post_process(std::move(a), b, add_special_tokens);
}
int Tokenizer::num_special_tokens(bool pair) const {
  return impl_->num_special_tokens(pair);
}
int32_t Tokenizer::cls_id() const {
  return impl_->role_id(impl_->cls_token);
}
int32_t Tokenizer::sep_id() const {
  return impl_->role_id(impl_->sep_token);
}
int32_t Tokenizer::pad_id() const {
  return impl_->role_id(impl_->pad_token);
}
int32_t Tokenizer::mask_id() const {
  return impl_->role_id(impl_->mask_token);
}
int32_t Tokenizer::unk_id() const {
  return impl_->role_id(impl_->unk_token);
}
int64_t Tokenizer::vocab_size() const {
  return impl_->vocab_size_with_added();
}
int64_t Tokenizer::id_upper_bound() const {
  return impl_->id_upper_bound();
}
std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const int32_t id = impl_->token_to_id(token);
  return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}
std::string Tokenizer::id_to_token(int32_t id) const {
  return impl_->id_to_token(id);
}
bool Tokenizer::is_bert() const {
  return impl_->model_kind == tok::ModelKind::WORDPIECE;
}
std::string Tokenizer::pad_token() const {
  return impl_->pad_token;
}
std::string Tokenizer::mask_token() const {
  return impl_->mask_token;
}

std::vector<int32_t> Tokenizer::word_ids(const Encoding& e) const {
  if (e.word_ids.size() == e.size()) return e.word_ids;
  // An Encoding assembled by hand: WordPiece continuation pieces ("##") join the previous word.
  std::vector<int32_t> w(e.size(), -1);
  int32_t cur = -1;
  for (size_t i = 0; i < e.size(); ++i) {
    if (i < e.special_tokens_mask.size() && e.special_tokens_mask[i]) continue;
    const bool cont = is_bert() ? e.tokens[i].rfind(impl_->wp_prefix, 0) == 0 && cur >= 0
                                : !e.tokens[i].empty() && e.tokens[i].rfind("\xC4\xA0", 0) != 0 && cur >= 0;
    if (!cont) ++cur;
    w[i] = cur;
  }
  return w;
}

}  // namespace bertfit
