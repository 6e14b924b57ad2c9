// Writing a tokenizer directory HuggingFace loads: tokenizer.json (fields in HF's order, FORMATS.md 2c),
// tokenizer_config.json, special_tokens_map.json, and the slow vocabulary files (vocab.txt, or vocab.json +
// merges.txt). Each file goes to a temporary name, is fsync'ed and renamed over the target.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "core/atomic_file.h"
#include "tokenizer/tokenizer_impl.h"

namespace bertfit {

using ojson = nlohmann::ordered_json;

namespace {

ojson added_token_json(const tok::AddedToken& t, bool with_id) {
  ojson j;
  if (with_id) j["id"] = t.id;
  j["content"] = t.content;
  j["single_word"] = t.single_word;
  j["lstrip"] = t.lstrip;
  j["rstrip"] = t.rstrip;
  j["normalized"] = t.normalized;
  j["special"] = t.special;
  return j;
}

ojson vocab_json(const TokenizerImpl& t) {
  ojson v = ojson::object();
  for (size_t id = 0; id < t.vocab_r.size(); ++id)
    if (!t.vocab_r[id].empty() && t.vocab.find(t.vocab_r[id]) == static_cast<int32_t>(id))
      v[t.vocab_r[id]] = id;
  return v;
}

ojson tokenizer_json(const TokenizerImpl& t) {
  ojson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = ojson::array();
  for (const tok::AddedToken& a : t.added) root["added_tokens"].push_back(added_token_json(a, true));
  if (t.normalizer) {
    ojson n;
    n["type"] = "BertNormalizer";
    n["clean_text"] = t.normalizer->clean_text;
    n["handle_chinese_chars"] = t.normalizer->handle_chinese_chars;
    n["strip_accents"] =
        t.normalizer->strip_accents < 0 ? ojson(nullptr) : ojson(t.normalizer->strip_accents == 1);
    n["lowercase"] = t.normalizer->lowercase;
    root["normalizer"] = n;
  } else {
    root["normalizer"] = nullptr;
  }
  if (t.pre_tokenizer == tok::PreTokenizerKind::BERT) {
    root["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  } else {
    root["pre_tokenizer"] = {{"type", "ByteLevel"},
                             {"add_prefix_space", t.bl_add_prefix_space},
                             {"trim_offsets", t.bl_trim_offsets},
                             {"use_regex", t.bl_use_regex}};
  }
  const tok::PostProcessorConfig& p = t.post;
  switch (p.kind) {
    case tok::PostKind::NONE:
      root["post_processor"] = nullptr;
      break;
    case tok::PostKind::BYTE_LEVEL:
      root["post_processor"] = {{"type", "ByteLevel"},
                                {"add_prefix_space", p.add_prefix_space},
                                {"trim_offsets", p.trim_offsets},
                                {"use_regex", true}};
      break;
    case tok::PostKind::BERT:
    case tok::PostKind::ROBERTA: {
      ojson j;
      j["type"] = p.kind == tok::PostKind::BERT ? "BertProcessing" : "RobertaProcessing";
      j["sep"] = {p.sep_token, p.sep_id};
      j["cls"] = {p.cls_token, p.cls_id};
      if (p.kind == tok::PostKind::ROBERTA) {
        j["trim_offsets"] = p.trim_offsets;
        j["add_prefix_space"] = p.add_prefix_space;
      }
      root["post_processor"] = j;
      break;
    }
    case tok::PostKind::TEMPLATE: {
      auto items = [](const std::vector<tok::TemplateItem>& v) {
        ojson a = ojson::array();
        for (const tok::TemplateItem& it : v) {
          ojson inner;
          inner["id"] = it.id;
          inner["type_id"] = it.type_id;
          a.push_back({{it.is_special ? "SpecialToken" : "Sequence", inner}});
        }
        return a;
      };
      ojson j;
      j["type"] = "TemplateProcessing";
      j["single"] = items(p.single);
      j["pair"] = items(p.pair);
      ojson sp = ojson::object();
      for (const auto& [key, s] : p.specials) sp[key] = {{"id", key}, {"ids", s.ids}, {"tokens", s.tokens}};
      j["special_tokens"] = sp;
      root["post_processor"] = j;
      break;
    }
  }
  root["decoder"] = ojson::parse(t.decoder_json);
  ojson m;
  if (t.model_kind == tok::ModelKind::WORDPIECE) {
    m["type"] = "WordPiece";
    m["unk_token"] = t.wp_unk_token;
    m["continuing_subword_prefix"] = t.wp_prefix;
    m["max_input_chars_per_word"] = t.wp_max_input_chars_per_word;
    m["vocab"] = vocab_json(t);
  } else {
    m["type"] = "BPE";
    m["dropout"] = nullptr;
    m["unk_token"] = t.bpe_unk_token ? ojson(*t.bpe_unk_token) : ojson(nullptr);
    m["continuing_subword_prefix"] = t.bpe_prefix;
    m["end_of_word_suffix"] = t.bpe_suffix;
    m["fuse_unk"] = t.bpe_fuse_unk;
    m["byte_fallback"] = false;
    m["ignore_merges"] = t.bpe_ignore_merges;
    m["vocab"] = vocab_json(t);
    ojson merges = ojson::array();
    for (const auto& [a, b] : t.merges) merges.push_back({a, b});
    m["merges"] = merges;
  }
  root["model"] = m;
  return root;
}

}  // namespace

void Tokenizer::save(const std::string& dir) const {
  const TokenizerImpl& t = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw FormatError(dir + ": cannot create directory (" + ec.message() + ")");
  const bool bert = t.model_kind == tok::ModelKind::WORDPIECE;

  // Slow vocabulary files.
  if (bert) {
    std::string txt;
    for (size_t id = 0; id < t.vocab_r.size(); ++id) txt += t.vocab_r[id] + "\n";
    write_file_atomic(dir + "/vocab.txt", txt);
  } else {
    write_file_atomic(dir + "/vocab.json", vocab_json(t).dump());
    std::string txt = "#version: 0.2\n";
    for (const auto& [a, b] : t.merges) txt += a + " " + b + "\n";
    write_file_atomic(dir + "/merges.txt", txt);
  }

  // Roles, as special_tokens_map.json and tokenizer_config.json carry them.
  ojson roles = ojson::object();
  auto role = [&](const char* key, const std::string& token) {
    if (token.empty()) return;
    for (const tok::AddedToken& a : t.added) {
      if (a.content == token && (a.lstrip || a.rstrip || a.single_word)) {
        roles[key] = added_token_json(a, false);
        roles[key].erase("special");
        return;
      }
    }
    roles[key] = token;
  };
  if (!bert) role("bos_token", t.bos_token);
  role("cls_token", t.cls_token);
  if (!bert) role("eos_token", t.eos_token);
  role("mask_token", t.mask_token);
  role("pad_token", t.pad_token);
  role("sep_token", t.sep_token);
  role("unk_token", t.unk_token);
  write_file_atomic(dir + "/special_tokens_map.json", roles.dump(2) + "\n");

  ojson cfg;
  ojson decoder = ojson::object();
  for (const tok::AddedToken& a : t.added) decoder[std::to_string(a.id)] = added_token_json(a, false);
  cfg["added_tokens_decoder"] = decoder;
  if (bert) {
    cfg["clean_up_tokenization_spaces"] = true;
    cfg["do_lower_case"] = t.normalizer ? t.normalizer->lowercase : false;
    cfg["strip_accents"] = !t.normalizer || t.normalizer->strip_accents < 0
                               ? ojson(nullptr)
                               : ojson(t.normalizer->strip_accents == 1);
    cfg["tokenize_chinese_chars"] = t.normalizer ? t.normalizer->handle_chinese_chars : true;
  } else {
    cfg["add_prefix_space"] = t.bl_add_prefix_space;
    cfg["errors"] = "replace";
    cfg["trim_offsets"] = t.post.trim_offsets;
  }
  for (auto it = roles.begin(); it != roles.end(); ++it) cfg[it.key()] = it.value();
  cfg["model_max_length"] = t.model_max_length;
  cfg["tokenizer_class"] = bert ? "BertTokenizer" : "RobertaTokenizer";
  write_file_atomic(dir + "/tokenizer_config.json", cfg.dump(2) + "\n");

  // tokenizer.json last: from_directory prefers it, so a reader sees it only once the rest is in place.
  write_file_atomic(dir + "/tokenizer.json", tokenizer_json(t).dump());
}

}  // namespace bertfit
