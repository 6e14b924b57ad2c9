// config.json reading and writing (see include/bertfit/io/config_json.h for the rules).
//
// model_type decides the family. A missing model_type falls back to the architectures' class name prefix
// ("Bert…" / "Roberta…"), as AutoConfig's name matching would. Chinese RoBERTa-wwm checkpoints
// (hfl/chinese-roberta-wwm-ext) say model_type "bert" and BertForMaskedLM: they ARE BERT, and are loaded as
// BERT whatever their name says. Keys we do not interpret are kept verbatim in extra_json and written back.
#include "bertfit/io/config_json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "bertfit/error.h"
#include "core/atomic_file.h"
#include "io/json_util.h"

namespace bertfit {

namespace {

using nlohmann::json;

constexpr int64_t kMaxSize = int64_t{1} << 31;  // bound on every size field
constexpr size_t kMaxConfigBytes = 16u << 20;   // config.json files are a few KB; refuse absurd ones

// Keys read into ModelConfig fields or regenerated on write; everything else goes to extra_json.
const std::set<std::string> kManagedKeys = {"model_type",
                                            "embedding_size",
                                            "vocab_size",
                                            "hidden_size",
                                            "num_hidden_layers",
                                            "num_attention_heads",
                                            "intermediate_size",
                                            "hidden_act",
                                            "hidden_dropout_prob",
                                            "attention_probs_dropout_prob",
                                            "classifier_dropout",
                                            "max_position_embeddings",
                                            "type_vocab_size",
                                            "initializer_range",
                                            "layer_norm_eps",
                                            "pad_token_id",
                                            "bos_token_id",
                                            "eos_token_id",
                                            "position_embedding_type",
                                            "problem_type",
                                            "id2label",
                                            "label2id",
                                            "num_labels",
                                            "architectures",
                                            "transformers_version",
                                            "torch_dtype",
                                            "dtype"};

class Reader {
 public:
  Reader(const json& j, const std::string& what) : j_(j), what_(what) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw ConfigError(what_ + ": " + key + ": " + problem);
  }
  std::string got(const json& v) const {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return std::string(io::json_type_name(v)) + " " + text;
  }
  const json* get(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  // An integer in [lo, kMaxSize]; absent keeps *out; null allowed only when nullable (sets null_value).
  void integer(const char* key, int64_t* out, int64_t lo, bool nullable = false,
               int64_t null_value = -1) const {
    const json* v = get(key);
    if (!v) return;
    if (v->is_null() && nullable) {
      *out = null_value;
      return;
    }
    if (!v->is_number_integer()) fail(key, "must be an integer, got " + got(*v));
    if (v->is_number_unsigned() ? v->get<uint64_t>() > static_cast<uint64_t>(kMaxSize) : false)
      fail(key, "is " + v->dump() + ", larger than the supported 2^31");
    const int64_t x = v->get<int64_t>();
    if (x < lo)
      fail(key, (lo > 0 ? "must be > 0, got " : "must be >= " + std::to_string(lo) + ", got ") +
                    std::to_string(x));
    *out = x;
  }
  void number(const char* key, float* out, bool nullable = false) const {
    const json* v = get(key);
    if (!v) return;
    if (v->is_null() && nullable) {
      *out = -1.0f;
      return;
    }
    if (!v->is_number()) fail(key, "must be a number, got " + got(*v));
    *out = v->get<float>();
    if (!std::isfinite(*out)) fail(key, v->dump() + " is outside the float range");
  }
  void string(const char* key, std::string* out) const {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_string()) fail(key, "must be a string, got " + got(*v));
    *out = v->get<std::string>();
  }

 private:
  const json& j_;
  const std::string& what_;
};

// Shortest decimal that reads back as the same float, as a double (so "0.1" is written, not
// 0.10000000149011612, matching what Python wrote for the original value).
double float_for_json(float f) {
  char buf[32];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}

}  // namespace

const char* model_type_name(ModelFamily f) {
  return f == ModelFamily::ROBERTA ? "roberta" : f == ModelFamily::ELECTRA ? "electra" : "bert";
}

const char* problem_type_name(ProblemType p) {
  switch (p) {
    case ProblemType::REGRESSION:
      return "regression";
    case ProblemType::MULTI_LABEL:
      return "multi_label_classification";
    default:
      return "single_label_classification";
  }
}

ModelConfig hf_class_defaults(ModelFamily family) {
  if (family == ModelFamily::ELECTRA) return electra_defaults();  // ElectraConfig's class defaults
  ModelConfig c;                                                  // BertConfig's defaults
  c.family = family;
  if (family == ModelFamily::ROBERTA) {
    c.vocab_size = 50265;
    c.pad_token_id = 1;
    c.bos_token_id = 0;
    c.eos_token_id = 2;
  }
  return c;
}

ModelConfig parse_config_json(const std::string& text, const std::string& what) {
  json j;
  try {
    j = io::parse_json_strict(text.data(), text.size(), what);
  } catch (const FormatError& e) {
    throw ConfigError(e.what());
  }
  if (!j.is_object()) throw ConfigError(what + ": must be a JSON object, got " + io::json_type_name(j));
  Reader r(j, what);

  // Family: model_type, else the architectures' prefix.
  ModelFamily family = ModelFamily::BERT;
  std::vector<std::string> architectures;
  if (const json* a = r.get("architectures"); a && !a->is_null()) {
    if (!a->is_array()) r.fail("architectures", "must be a list of strings, got " + r.got(*a));
    for (const auto& x : *a) {
      if (!x.is_string()) r.fail("architectures", "must be a list of strings, got an entry " + r.got(x));
      architectures.push_back(x.get<std::string>());
    }
  }
  if (const json* mt = r.get("model_type")) {
    if (!mt->is_string()) r.fail("model_type", "must be a string, got " + r.got(*mt));
    const std::string& s = mt->get_ref<const std::string&>();
    if (s == "bert")
      family = ModelFamily::BERT;
    else if (s == "roberta")
      family = ModelFamily::ROBERTA;
    else if (s == "electra")
      family = ModelFamily::ELECTRA;
    else
      r.fail("model_type",
             "\"" + s + "\" is not supported (bertfit reads \"bert\", \"roberta\" and \"electra\")");
  } else if (!architectures.empty() && architectures[0].rfind("Roberta", 0) == 0) {
    family = ModelFamily::ROBERTA;
  } else if (!architectures.empty() && architectures[0].rfind("Electra", 0) == 0) {
    family = ModelFamily::ELECTRA;
  } else if (!architectures.empty() && architectures[0].rfind("Bert", 0) != 0) {
    r.fail("model_type", "missing, and architectures[0] \"" + architectures[0] +
                             "\" is neither Bert*, Roberta* nor Electra*");
  } else if (architectures.empty()) {
    r.fail("model_type",
           "missing (and no architectures to infer it from); expected \"bert\", \"roberta\" or \"electra\"");
  }

  ModelConfig c = hf_class_defaults(family);
  c.architectures = architectures;
  r.integer("vocab_size", &c.vocab_size, 1);
  r.integer("hidden_size", &c.hidden_size, 1);
  if (family == ModelFamily::ELECTRA) r.integer("embedding_size", &c.embedding_size, 1);
  r.integer("num_hidden_layers", &c.num_hidden_layers, 1);
  r.integer("num_attention_heads", &c.num_attention_heads, 1);
  r.integer("intermediate_size", &c.intermediate_size, 1);
  r.integer("max_position_embeddings", &c.max_position_embeddings, 1);
  r.integer("type_vocab_size", &c.type_vocab_size, 1);
  if (const json* p = r.get("pad_token_id"); p && p->is_null())
    r.fail("pad_token_id", "null is not supported (the embeddings need a padding id)");
  r.integer("pad_token_id", &c.pad_token_id, 0);
  r.integer("bos_token_id", &c.bos_token_id, 0, /*nullable=*/true);
  r.integer("eos_token_id", &c.eos_token_id, 0, /*nullable=*/true);
  r.number("hidden_dropout_prob", &c.hidden_dropout_prob);
  r.number("attention_probs_dropout_prob", &c.attention_probs_dropout_prob);
  r.number("classifier_dropout", &c.classifier_dropout, /*nullable=*/true);
  r.number("initializer_range", &c.initializer_range);
  r.number("layer_norm_eps", &c.layer_norm_eps);
  r.string("hidden_act", &c.hidden_act);
  r.string("position_embedding_type", &c.position_embedding_type);

  if (const json* p = r.get("problem_type"); p && !p->is_null()) {
    if (!p->is_string()) r.fail("problem_type", "must be a string or null, got " + r.got(*p));
    const std::string& s = p->get_ref<const std::string&>();
    if (s == "regression")
      c.problem_type = ProblemType::REGRESSION;
    else if (s == "single_label_classification")
      c.problem_type = ProblemType::SINGLE_LABEL;
    else if (s == "multi_label_classification")
      c.problem_type = ProblemType::MULTI_LABEL;
    else
      r.fail("problem_type", "\"" + s +
                                 "\" is not one of regression, single_label_classification, "
                                 "multi_label_classification");
    c.problem_type_set = true;
  }

  // id2label: keys are the strings "0".."n-1" (JSON keys are strings; HF turns them into ints).
  if (const json* m = r.get("id2label"); m && !m->is_null()) {
    if (!m->is_object()) r.fail("id2label", "must be an object {\"0\": \"label\", ...}, got " + r.got(*m));
    if (m->size() > static_cast<size_t>(kMaxSize)) r.fail("id2label", "too many labels");
    c.id2label.assign(m->size(), std::string());
    std::vector<bool> seen(m->size(), false);
    for (auto it = m->begin(); it != m->end(); ++it) {
      const std::string& k = it.key();
      const bool digits = !k.empty() && k.size() <= 10 &&
                          k.find_first_not_of("0123456789") == std::string::npos &&
                          (k.size() == 1 || k[0] != '0');
      const uint64_t id = digits ? std::stoull(k) : 0;
      if (!digits || id >= m->size())
        r.fail("id2label", "key \"" + k + "\" is not a label id in 0.." + std::to_string(m->size() - 1) +
                               " (keys must be the decimal ids of all " + std::to_string(m->size()) +
                               " labels)");
      if (!it.value().is_string())
        r.fail("id2label", "label " + k + " must be a string, got " + r.got(it.value()));
      seen[id] = true;
      c.id2label[id] = it.value().get<std::string>();
    }
    std::set<std::string> names;
    for (const auto& n : c.id2label)
      if (!names.insert(n).second) r.fail("id2label", "label \"" + n + "\" appears twice");
  }
  // label2id is derived from id2label on write; here only its shape is checked (real configs exist whose
  // label2id was left at LABEL_i while id2label was edited, and HF uses id2label for predictions).
  if (const json* m = r.get("label2id"); m && !m->is_null()) {
    if (!m->is_object()) r.fail("label2id", "must be an object {\"label\": 0, ...}, got " + r.got(*m));
    for (auto it = m->begin(); it != m->end(); ++it)
      if (!it.value().is_number_integer())
        r.fail("label2id", "value for \"" + it.key() + "\" must be an integer, got " + r.got(it.value()));
  }
  if (const json* n = r.get("num_labels")) {
    int64_t num = 0;
    r.integer("num_labels", &num, 1);
    if (c.id2label.empty()) {
      for (int64_t i = 0; i < num; ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
    } else if (num != static_cast<int64_t>(c.id2label.size())) {
      r.fail("num_labels", std::to_string(num) + " disagrees with id2label, which has " +
                               std::to_string(c.id2label.size()) + " labels");
    }
    (void)n;
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kManagedKeys.count(it.key())) c.extra_json[it.key()] = it.value().dump();
  return c;
}

ModelConfig read_config_json(const std::string& path) {
  std::string text;
  try {
    text = io::read_small_file(path, kMaxConfigBytes);
  } catch (const FormatError& e) {
    throw ConfigError(e.what());
  }
  ModelConfig c = parse_config_json(text, path);
  try {
    c.validate();
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    if (msg.rfind("config: ", 0) == 0) msg = msg.substr(8);
    throw ConfigError(path + ": " + msg);
  }
  return c;
}

std::string config_json_text(const ModelConfig& c) {
  json j = json::object();
  for (const auto& [k, v] : c.extra_json) {
    try {
      j[k] = json::parse(v);
    } catch (const json::exception&) {
      throw ConfigError("config: extra key \"" + k + "\" holds invalid JSON text");
    }
  }
  j["model_type"] = model_type_name(c.family);
  if (!c.architectures.empty()) j["architectures"] = c.architectures;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  if (c.family == ModelFamily::ELECTRA) j["embedding_size"] = c.embedding_width();
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["intermediate_size"] = c.intermediate_size;
  j["hidden_act"] = c.hidden_act;
  j["hidden_dropout_prob"] = float_for_json(c.hidden_dropout_prob);
  j["attention_probs_dropout_prob"] = float_for_json(c.attention_probs_dropout_prob);
  j["classifier_dropout"] =
      c.classifier_dropout < 0 ? json(nullptr) : json(float_for_json(c.classifier_dropout));
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["type_vocab_size"] = c.type_vocab_size;
  j["initializer_range"] = float_for_json(c.initializer_range);
  j["layer_norm_eps"] = float_for_json(c.layer_norm_eps);
  j["pad_token_id"] = c.pad_token_id;
  // PretrainedConfig-level keys: written only when they differ from its defaults (None), as use_diff does.
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  j["position_embedding_type"] = c.position_embedding_type;
  if (c.problem_type_set) j["problem_type"] = problem_type_name(c.problem_type);
  json id2label = json::object(), label2id = json::object();
  for (int64_t i = 0; i < c.num_labels(); ++i) {
    const std::string name = c.id2label.empty() ? "LABEL_" + std::to_string(i) : c.id2label[i];
    id2label[std::to_string(i)] = name;
    label2id[name] = i;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  if (!j.contains("use_cache")) j["use_cache"] = true;
  j["torch_dtype"] = "float32";
  j["transformers_version"] = kTransformersVersion;
  try {
    // std::map keys are sorted as sort_keys=True sorts them; non-ASCII escaped as json.dumps's ensure_ascii.
    return j.dump(2, ' ', true) + "\n";
  } catch (const json::exception& e) {
    throw ConfigError(std::string("config: cannot serialise (a label or key is not valid UTF-8): ") +
                      e.what());
  }
}

void write_config_json(const std::string& path, const ModelConfig& c) {
  write_file_atomic(path, config_json_text(c));
}

}  // namespace bertfit
