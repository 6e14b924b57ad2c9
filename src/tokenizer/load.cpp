// Loading: tokenizer.json (FORMATS.md 2c), or the slow files (vocab.txt; vocab.json + merges.txt) with
// tokenizer_config.json / special_tokens_map.json / added_tokens.json, assembled the way transformers'
// BertConverter and RobertaConverter do. Every error is a FormatError naming the file and the JSON field or
// line; nothing is allocated beyond what the file's own size justifies.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bertfit/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bertfit {

using nlohmann::json;

namespace tok {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw FormatError(path + ": read error");
  return ss.str();
}

}  // namespace tok

namespace {

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

json parse_json(const std::string& path) {
  const std::string text = tok::read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte position into a line number for the message.
    size_t line = 1;
    for (size_t i = 0; i < e.byte && i < text.size(); ++i) line += text[i] == '\n';
    throw FormatError(path + ":" + std::to_string(line) + ": malformed JSON: " + e.what());
  } catch (
      const json::exception& e) {  // out_of_range: a number like 1e999 overflows a double (found by fuzzing)
    throw FormatError(path + ": malformed JSON: " + e.what());
  }
}

// Typed field access with errors naming file and field.
struct Fields {
  const std::string& file;
  const json& j(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object() || !obj.contains(key))
      throw FormatError(file + ": missing field " + where + "." + key);
    return obj.at(key);
  }
  std::string str(const json& obj, const char* key, const std::string& where) const {
    const json& v = j(obj, key, where);
    if (!v.is_string()) throw FormatError(file + ": field " + where + "." + key + " must be a string");
    return v.get<std::string>();
  }
  bool flag(const json& obj, const char* key, const std::string& where, bool def) const {
    if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return def;
    const json& v = obj.at(key);
    if (!v.is_boolean()) throw FormatError(file + ": field " + where + "." + key + " must be true or false");
    return v.get<bool>();
  }
  int64_t integer(const json& v, const std::string& where, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) throw FormatError(file + ": field " + where + " must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      throw FormatError(file + ": field " + where + " = " + std::to_string(x) + " is out of range [" +
                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
};

constexpr int64_t kMaxId = 1 << 30;  // far above any real vocabulary; keeps vocab_r's allocation bounded

void set_vocab_entry(TokenizerImpl& t, const std::string& token, int32_t id) {
  t.vocab.insert(token, id);
  if (static_cast<size_t>(id) >= t.vocab_r.size()) t.vocab_r.resize(static_cast<size_t>(id) + 1);
  t.vocab_r[static_cast<size_t>(id)] = token;
}

void load_vocab_object(TokenizerImpl& t, const json& v, const Fields& f, const std::string& where) {
  if (!v.is_object()) throw FormatError(f.file + ": field " + where + " must be an object {token: id}");
  // Ids beyond the number of entries would make vocab_r larger than the file justifies.
  const int64_t hi = std::min<int64_t>(kMaxId, static_cast<int64_t>(v.size()) * 4 + 1024);
  for (auto it = v.begin(); it != v.end(); ++it)
    set_vocab_entry(t, it.key(),
                    static_cast<int32_t>(f.integer(it.value(), where + "[\"" + it.key() + "\"]", 0, hi)));
}

tok::AddedToken parse_added_token(const json& o, const Fields& f, const std::string& where,
                                  bool default_normalized) {
  tok::AddedToken a;
  if (o.is_string()) {
    a.content = o.get<std::string>();
    a.normalized = default_normalized;
    return a;
  }
  a.content = f.str(o, "content", where);
  a.single_word = f.flag(o, "single_word", where, false);
  a.lstrip = f.flag(o, "lstrip", where, false);
  a.rstrip = f.flag(o, "rstrip", where, false);
  a.special = f.flag(o, "special", where, false);
  a.normalized = f.flag(o, "normalized", where, default_normalized);
  if (o.contains("id")) a.id = static_cast<int32_t>(f.integer(o.at("id"), where + ".id", 0, kMaxId));
  return a;
}

void parse_normalizer(TokenizerImpl& t, const json& n, const Fields& f) {
  if (n.is_null()) return;
  const std::string type = f.str(n, "type", "normalizer");
  if (type != "BertNormalizer")
    throw FormatError(f.file + ": normalizer type '" + type + "' is not supported (BertNormalizer or null)");
  tok::BertNormalizerConfig c;
  c.clean_text = f.flag(n, "clean_text", "normalizer", true);
  c.handle_chinese_chars = f.flag(n, "handle_chinese_chars", "normalizer", true);
  c.lowercase = f.flag(n, "lowercase", "normalizer", true);
  if (n.contains("strip_accents") && !n.at("strip_accents").is_null())
    c.strip_accents = f.flag(n, "strip_accents", "normalizer", false) ? 1 : 0;
  t.normalizer = c;
}

void parse_pre_tokenizer(TokenizerImpl& t, const json& p, const Fields& f) {
  if (p.is_null())
    throw FormatError(f.file + ": pre_tokenizer null is not supported (BertPreTokenizer or ByteLevel)");
  const std::string type = f.str(p, "type", "pre_tokenizer");
  if (type == "BertPreTokenizer") {
    t.pre_tokenizer = tok::PreTokenizerKind::BERT;
  } else if (type == "ByteLevel") {
    t.pre_tokenizer = tok::PreTokenizerKind::BYTE_LEVEL;
    t.bl_add_prefix_space = f.flag(p, "add_prefix_space", "pre_tokenizer", true);
    t.bl_trim_offsets = f.flag(p, "trim_offsets", "pre_tokenizer", true);
    t.bl_use_regex = f.flag(p, "use_regex", "pre_tokenizer", true);
  } else {
    throw FormatError(f.file + ": pre_tokenizer type '" + type +
                      "' is not supported (BertPreTokenizer or ByteLevel)");
  }
}

std::pair<std::string, int32_t> token_pair(const json& v, const Fields& f, const std::string& where) {
  if (!v.is_array() || v.size() != 2 || !v[0].is_string())
    throw FormatError(f.file + ": field " + where + " must be [\"token\", id]");
  return {v[0].get<std::string>(), static_cast<int32_t>(f.integer(v[1], where + "[1]", 0, kMaxId))};
}

void parse_post_processor(TokenizerImpl& t, const json& p, const Fields& f) {
  tok::PostProcessorConfig& c = t.post;
  if (p.is_null()) {
    c.kind = tok::PostKind::NONE;
    return;
  }
  const std::string type = f.str(p, "type", "post_processor");
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    c.kind = type == "BertProcessing" ? tok::PostKind::BERT : tok::PostKind::ROBERTA;
    std::tie(c.cls_token, c.cls_id) = token_pair(f.j(p, "cls", "post_processor"), f, "post_processor.cls");
    std::tie(c.sep_token, c.sep_id) = token_pair(f.j(p, "sep", "post_processor"), f, "post_processor.sep");
    c.trim_offsets = f.flag(p, "trim_offsets", "post_processor", true);
    c.add_prefix_space = f.flag(p, "add_prefix_space", "post_processor", true);
  } else if (type == "ByteLevel") {
    c.kind = tok::PostKind::BYTE_LEVEL;
    c.trim_offsets = f.flag(p, "trim_offsets", "post_processor", true);
    c.add_prefix_space = f.flag(p, "add_prefix_space", "post_processor", true);
  } else if (type == "TemplateProcessing") {
    c.kind = tok::PostKind::TEMPLATE;
    auto parse_template = [&](const char* key, std::vector<tok::TemplateItem>& items) {
      const json& arr = f.j(p, key, "post_processor");
      if (!arr.is_array()) throw FormatError(f.file + ": field post_processor." + key + " must be an array");
      for (size_t i = 0; i < arr.size(); ++i) {
        const std::string where = std::string("post_processor.") + key + "[" + std::to_string(i) + "]";
        const json& e = arr[i];
        tok::TemplateItem it;
        if (e.is_object() && e.contains("SpecialToken")) {
          it.is_special = true;
          it.id = f.str(e.at("SpecialToken"), "id", where + ".SpecialToken");
          it.type_id = static_cast<int32_t>(f.integer(
              f.j(e.at("SpecialToken"), "type_id", where + ".SpecialToken"), where + ".type_id", 0, 255));
        } else if (e.is_object() && e.contains("Sequence")) {
          it.id = f.str(e.at("Sequence"), "id", where + ".Sequence");
          if (it.id != "A" && it.id != "B")
            throw FormatError(f.file + ": field " + where + ".Sequence.id must be \"A\" or \"B\"");
          it.type_id = static_cast<int32_t>(
              f.integer(f.j(e.at("Sequence"), "type_id", where + ".Sequence"), where + ".type_id", 0, 255));
        } else {
          throw FormatError(f.file + ": field " + where +
                            " must be {\"SpecialToken\":..} or {\"Sequence\":..}");
        }
        items.push_back(it);
      }
    };
    parse_template("single", c.single);
    parse_template("pair", c.pair);
    const json& sp = f.j(p, "special_tokens", "post_processor");
    if (!sp.is_object())
      throw FormatError(f.file + ": field post_processor.special_tokens must be an object");
    for (auto it = sp.begin(); it != sp.end(); ++it) {
      const std::string where = "post_processor.special_tokens[\"" + it.key() + "\"]";
      tok::TemplateSpecial s;
      const json& ids = f.j(it.value(), "ids", where);
      const json& toks = f.j(it.value(), "tokens", where);
      if (!ids.is_array() || !toks.is_array() || ids.size() != toks.size())
        throw FormatError(f.file + ": field " + where + ": ids and tokens must be arrays of the same length");
      for (size_t k = 0; k < ids.size(); ++k) {
        s.ids.push_back(static_cast<int32_t>(f.integer(ids[k], where + ".ids", 0, kMaxId)));
        if (!toks[k].is_string())
          throw FormatError(f.file + ": field " + where + ".tokens must hold strings");
        s.tokens.push_back(toks[k].get<std::string>());
      }
      c.specials[it.key()] = s;
    }
    for (const auto* items : {&c.single, &c.pair})
      for (const tok::TemplateItem& it : *items)
        if (it.is_special && !c.specials.count(it.id))
          throw FormatError(f.file + ": post_processor template uses special token '" + it.id +
                            "' missing from special_tokens");
    // Roles for cls/sep: the first and last special token of the single template.
    for (const tok::TemplateItem& it : c.single) {
      if (!it.is_special) continue;
      const tok::TemplateSpecial& s = c.specials[it.id];
      if (s.ids.empty()) continue;
      if (c.cls_id < 0) c.cls_token = s.tokens[0], c.cls_id = s.ids[0];
      c.sep_token = s.tokens.back(), c.sep_id = s.ids.back();
    }
  } else {
    throw FormatError(
        f.file + ": post_processor type '" + type +
        "' is not supported (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, null)");
  }
}

void parse_merges(TokenizerImpl& t, const json& m, const Fields& f) {
  if (!m.is_array()) throw FormatError(f.file + ": field model.merges must be an array");
  t.merges.reserve(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    const json& e = m[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    if (e.is_string()) {  // legacy "a b"
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw FormatError(f.file + ": field " + where + " = \"" + s +
                          "\" must be two tokens separated by one space");
      t.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      t.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      throw FormatError(f.file + ": field " + where + " must be \"a b\" or [\"a\", \"b\"]");
    }
  }
}

void parse_model(TokenizerImpl& t, const json& m, const Fields& f) {
  if (!m.is_object()) throw FormatError(f.file + ": field model must be an object");
  std::string type;
  if (m.contains("type")) {
    type = f.str(m, "type", "model");
  } else {
    type = m.contains("merges") ? "BPE" : "WordPiece";  // untagged older files
  }
  if (type == "WordPiece") {
    t.model_kind = tok::ModelKind::WORDPIECE;
    t.wp_unk_token = m.contains("unk_token") ? f.str(m, "unk_token", "model") : "[UNK]";
    t.wp_prefix =
        m.contains("continuing_subword_prefix") ? f.str(m, "continuing_subword_prefix", "model") : "##";
    if (m.contains("max_input_chars_per_word"))
      t.wp_max_input_chars_per_word = static_cast<int>(
          f.integer(m.at("max_input_chars_per_word"), "model.max_input_chars_per_word", 0, 1 << 30));
    load_vocab_object(t, f.j(m, "vocab", "model"), f, "model.vocab");
  } else if (type == "BPE") {
    t.model_kind = tok::ModelKind::BPE;
    if (m.contains("dropout") && !m.at("dropout").is_null())
      throw FormatError(f.file +
                        ": field model.dropout: BPE dropout is not supported (it makes tokenization random)");
    if (f.flag(m, "byte_fallback", "model", false))
      throw FormatError(f.file + ": field model.byte_fallback = true is not supported");
    if (m.contains("unk_token") && !m.at("unk_token").is_null())
      t.bpe_unk_token = f.str(m, "unk_token", "model");
    if (m.contains("continuing_subword_prefix") && !m.at("continuing_subword_prefix").is_null())
      t.bpe_prefix = f.str(m, "continuing_subword_prefix", "model");
    if (m.contains("end_of_word_suffix") && !m.at("end_of_word_suffix").is_null())
      t.bpe_suffix = f.str(m, "end_of_word_suffix", "model");
    t.bpe_fuse_unk = f.flag(m, "fuse_unk", "model", false);
    t.bpe_ignore_merges = f.flag(m, "ignore_merges", "model", false);
    load_vocab_object(t, f.j(m, "vocab", "model"), f, "model.vocab");
    parse_merges(t, f.j(m, "merges", "model"), f);
  } else {
    throw FormatError(f.file + ": model type '" + type + "' is not supported (WordPiece or BPE)");
  }
}

// Roles not given by the configuration files: the conventional names, when the tokenizer knows them.
void default_roles(TokenizerImpl& t) {
  const bool bert = t.model_kind == tok::ModelKind::WORDPIECE;
  auto fill = [&](std::string& role, const std::string& name) {
    if (role.empty() && t.token_to_id(name) >= 0) role = name;
  };
  if (t.cls_token.empty() && t.post.cls_id >= 0) t.cls_token = t.post.cls_token;
  if (t.sep_token.empty() && t.post.sep_id >= 0) t.sep_token = t.post.sep_token;
  fill(t.cls_token, bert ? "[CLS]" : "<s>");
  fill(t.sep_token, bert ? "[SEP]" : "</s>");
  fill(t.pad_token, bert ? "[PAD]" : "<pad>");
  fill(t.mask_token, bert ? "[MASK]" : "<mask>");
  fill(t.unk_token, bert ? t.wp_unk_token : t.bpe_unk_token.value_or("<unk>"));
  if (!bert) {
    fill(t.bos_token, "<s>");
    fill(t.eos_token, "</s>");
  }
}

// Adds an added token, assigning an id the way AddedVocabulary::add_tokens does when it has none.
void add_token(TokenizerImpl& t, tok::AddedToken a) {
  if (a.content.empty()) return;
  for (tok::AddedToken& e : t.added) {
    if (e.content == a.content) {  // already there: keep its id, take the newer flags
      a.id = e.id;
      e = a;
      return;
    }
  }
  if (a.id < 0) a.id = t.vocab.find(a.content);
  if (a.id < 0) {
    int32_t next = static_cast<int32_t>(t.vocab_r.size());
    for (const tok::AddedToken& e : t.added) next = std::max(next, e.id + 1);
    a.id = next;
  }
  t.added.push_back(a);
}

void parse_tokenizer_json(TokenizerImpl& t, const std::string& path) {
  const json root = parse_json(path);
  Fields f{path};
  if (!root.is_object()) throw FormatError(path + ": the top level must be a JSON object");
  parse_model(t, f.j(root, "model", ""), f);
  parse_normalizer(t, root.value("normalizer", json()), f);
  parse_pre_tokenizer(t, root.value("pre_tokenizer", json()), f);
  parse_post_processor(t, root.value("post_processor", json()), f);
  if (root.contains("decoder")) t.decoder_json = root.at("decoder").dump();
  if (root.contains("added_tokens")) {
    const json& arr = root.at("added_tokens");
    if (!arr.is_array()) throw FormatError(path + ": field added_tokens must be an array");
    for (size_t i = 0; i < arr.size(); ++i) {
      tok::AddedToken a = parse_added_token(arr[i], f, "added_tokens[" + std::to_string(i) + "]", true);
      if (a.id < 0) throw FormatError(path + ": field added_tokens[" + std::to_string(i) + "].id is missing");
      add_token(t, a);
    }
  }
}

// vocab.txt: one token per line, id = line index. As transformers' load_vocab (the slow tokenizer that the
// converter reads): the line break is removed and nothing else; "\r\n" and "\r" end lines too (universal
// newlines); a later duplicate wins.
void load_vocab_txt(TokenizerImpl& t, const std::string& path) {
  const std::string text = tok::read_file(path);
  size_t line = 0, pos = 0;
  while (pos < text.size()) {
    size_t e = pos;
    while (e < text.size() && text[e] != '\n' && text[e] != '\r') ++e;
    const std::string_view token(text.data() + pos, e - pos);
    ++line;
    if (!tok::is_valid_utf8(token)) throw FormatError(path + ":" + std::to_string(line) + ": invalid UTF-8");
    set_vocab_entry(t, std::string(token), static_cast<int32_t>(line - 1));
    if (e < text.size() && text[e] == '\r' && e + 1 < text.size() && text[e + 1] == '\n') ++e;
    pos = e + 1;
  }
  if (line == 0) throw FormatError(path + ": empty vocabulary");
}

// merges.txt: "left right" per line, rank = order; lines starting with "#version" and empty lines skipped.
void load_merges_txt(TokenizerImpl& t, const std::string& path) {
  const std::string text = tok::read_file(path);
  std::istringstream in(text);
  std::string s;
  size_t line = 0;
  while (std::getline(in, s)) {
    ++line;
    if (!s.empty() && s.back() == '\r') s.pop_back();
    if (s.empty() || s.rfind("#version", 0) == 0) continue;
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
      throw FormatError(path + ":" + std::to_string(line) +
                        ": a merge must be two tokens separated by one space, got \"" + s + "\"");
    t.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
}

struct SlowConfig {
  json config = json::object(), special_map = json::object();
};

std::string role_from(const SlowConfig& c, const char* key, const std::string& def,
                      tok::AddedToken* out_token, const Fields& fc, const Fields& fs) {
  for (const auto& [j, f] : {std::pair<const json&, const Fields&>{c.special_map, fs}, {c.config, fc}}) {
    if (j.contains(key) && !j.at(key).is_null()) {
      tok::AddedToken a = parse_added_token(j.at(key), f, key, false);
      if (out_token) *out_token = a;
      return a.content;
    }
  }
  if (out_token) out_token->content = def;
  return def;
}

}  // namespace

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = path;
  parse_tokenizer_json(*t, path);
  default_roles(*t);
  t->finalize();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_directory(const std::string& dir) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = dir;
  const std::string tj = dir + "/tokenizer.json", cfg_path = dir + "/tokenizer_config.json",
                    map_path = dir + "/special_tokens_map.json", added_path = dir + "/added_tokens.json";
  SlowConfig c;
  if (file_exists(cfg_path)) c.config = parse_json(cfg_path);
  if (file_exists(map_path)) c.special_map = parse_json(map_path);
  if (!c.config.is_object()) throw FormatError(cfg_path + ": the top level must be a JSON object");
  if (!c.special_map.is_object()) throw FormatError(map_path + ": the top level must be a JSON object");
  Fields fc{cfg_path}, fs{map_path};
  if (c.config.contains("model_max_length") && c.config.at("model_max_length").is_number_integer())
    t->model_max_length = c.config.at("model_max_length").get<int64_t>();

  if (file_exists(tj)) {
    t->source = tj;
    parse_tokenizer_json(*t, tj);
    for (const auto& [key, role] : {std::pair<const char*, std::string*>{"cls_token", &t->cls_token},
                                    {"sep_token", &t->sep_token},
                                    {"pad_token", &t->pad_token},
                                    {"mask_token", &t->mask_token},
                                    {"unk_token", &t->unk_token},
                                    {"bos_token", &t->bos_token},
                                    {"eos_token", &t->eos_token}})
      *role = role_from(c, key, "", nullptr, fc, fs);
    default_roles(*t);
    t->finalize();
    return Tokenizer(std::move(t));
  }

  const bool bert = file_exists(dir + "/vocab.txt");
  const bool bpe = file_exists(dir + "/vocab.json") && file_exists(dir + "/merges.txt");
  if (!bert && !bpe)
    throw FormatError(dir + ": no tokenizer.json, vocab.txt, or vocab.json + merges.txt in this directory");
  std::vector<tok::AddedToken> specials;
  auto role = [&](const char* key, const std::string& def, std::string& dst, bool lstrip_default) {
    tok::AddedToken a;
    a.lstrip = lstrip_default;
    dst = role_from(c, key, def, &a, fc, fs);
    if (dst.empty()) return;
    a.content = dst;
    a.special = true;
    a.normalized = false;
    a.id = -1;
    specials.push_back(a);
  };
  if (bert) {
    load_vocab_txt(*t, dir + "/vocab.txt");
    t->model_kind = tok::ModelKind::WORDPIECE;
    tok::BertNormalizerConfig n;
    n.lowercase = fc.flag(c.config, "do_lower_case", "", true);
    n.handle_chinese_chars = fc.flag(c.config, "tokenize_chinese_chars", "", true);
    if (c.config.contains("strip_accents") && !c.config.at("strip_accents").is_null())
      n.strip_accents = fc.flag(c.config, "strip_accents", "", false) ? 1 : 0;
    t->normalizer = n;
    t->pre_tokenizer = tok::PreTokenizerKind::BERT;
    role("unk_token", "[UNK]", t->unk_token, false);
    role("sep_token", "[SEP]", t->sep_token, false);
    role("pad_token", "[PAD]", t->pad_token, false);
    role("cls_token", "[CLS]", t->cls_token, false);
    role("mask_token", "[MASK]", t->mask_token, false);
    t->wp_unk_token = t->unk_token;
    t->decoder_json = R"({"type":"WordPiece","prefix":"##","cleanup":true})";
  } else {
    Fields fv{dir + "/vocab.json"};
    load_vocab_object(*t, parse_json(dir + "/vocab.json"), fv, "(top level)");
    load_merges_txt(*t, dir + "/merges.txt");
    t->model_kind = tok::ModelKind::BPE;
    t->pre_tokenizer = tok::PreTokenizerKind::BYTE_LEVEL;
    t->bl_add_prefix_space = fc.flag(c.config, "add_prefix_space", "", false);
    t->bl_trim_offsets = fc.flag(c.config, "trim_offsets", "", true);
    role("bos_token", "<s>", t->bos_token, false);
    role("eos_token", "</s>", t->eos_token, false);
    role("unk_token", "<unk>", t->unk_token, false);
    role("sep_token", "</s>", t->sep_token, false);
    role("cls_token", "<s>", t->cls_token, false);
    role("pad_token", "<pad>", t->pad_token, false);
    role("mask_token", "<mask>", t->mask_token, true);  // RobertaTokenizer: AddedToken(mask, lstrip=True)
    t->decoder_json = R"({"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true})";
  }
  // additional_special_tokens, then added_tokens_decoder (transformers >= 4.34) and added_tokens.json.
  for (const json* j : {&c.special_map, &c.config}) {
    if (j->contains("additional_special_tokens") && j->at("additional_special_tokens").is_array()) {
      const json& arr = j->at("additional_special_tokens");
      for (size_t i = 0; i < arr.size(); ++i) {
        tok::AddedToken a =
            parse_added_token(arr[i], j == &c.config ? fc : fs, "additional_special_tokens", false);
        a.special = true;
        a.id = -1;
        specials.push_back(a);
      }
    }
  }
  for (const tok::AddedToken& a : specials) add_token(*t, a);
  if (c.config.contains("added_tokens_decoder") && c.config.at("added_tokens_decoder").is_object()) {
    const json& d = c.config.at("added_tokens_decoder");
    for (auto it = d.begin(); it != d.end(); ++it) {
      tok::AddedToken a = parse_added_token(it.value(), fc, "added_tokens_decoder." + it.key(), true);
      try {
        a.id = std::stoi(it.key());
      } catch (const std::exception&) {
        throw FormatError(cfg_path + ": field added_tokens_decoder key '" + it.key() + "' is not an id");
      }
      add_token(*t, a);
    }
  }
  if (file_exists(added_path)) {
    const json a = parse_json(added_path);
    Fields fa{added_path};
    if (!a.is_object()) throw FormatError(added_path + ": the top level must be an object {token: id}");
    for (auto it = a.begin(); it != a.end(); ++it) {
      tok::AddedToken at;
      at.content = it.key();
      at.id = static_cast<int32_t>(fa.integer(it.value(), it.key(), 0, kMaxId));
      add_token(*t, at);
    }
  }
  // Post-processor as the converters build it.
  tok::PostProcessorConfig& p = t->post;
  const std::string cls = t->cls_token, sep = t->sep_token;
  auto id_of = [&](const std::string& s) {
    for (const tok::AddedToken& a : t->added)
      if (a.content == s) return a.id;
    return t->vocab.find(s);
  };
  if (id_of(cls) < 0 || id_of(sep) < 0)
    throw FormatError(dir + ": the special tokens '" + cls + "' / '" + sep + "' are not in the vocabulary");
  if (bert) {
    p.kind = tok::PostKind::TEMPLATE;
    p.single = {{true, cls, 0}, {false, "A", 0}, {true, sep, 0}};
    p.pair = {{true, cls, 0}, {false, "A", 0}, {true, sep, 0}, {false, "B", 1}, {true, sep, 1}};
    p.specials[cls] = tok::TemplateSpecial{{id_of(cls)}, {cls}};
    p.specials[sep] = tok::TemplateSpecial{{id_of(sep)}, {sep}};
    p.cls_token = cls, p.cls_id = id_of(cls), p.sep_token = sep, p.sep_id = id_of(sep);
  } else {
    p.kind = tok::PostKind::ROBERTA;
    p.cls_token = cls, p.cls_id = id_of(cls), p.sep_token = sep, p.sep_id = id_of(sep);
    p.trim_offsets = t->bl_trim_offsets;
    p.add_prefix_space = t->bl_add_prefix_space;
  }
  default_roles(*t);
  t->finalize();
  return Tokenizer(std::move(t));
}

}  // namespace bertfit
