// `bertfit inspect`: reads what it can of a model directory and turns every failure into a reported problem
// (see include/bertfit/io/inspect.h).
#include "bertfit/io/inspect.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "io/json_util.h"

namespace bertfit {

namespace fs = std::filesystem;

namespace {

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000)
    std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  else if (n >= 1000)
    std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
  else
    return std::to_string(n);
  return buf;
}

// Tokenizer kind and the largest token id it can produce (-1 when unknown).
std::string describe_tokenizer(const std::string& dir, int64_t* max_id, std::vector<std::string>* problems) {
  *max_id = -1;
  const fs::path d(dir);
  std::string cls;
  if (fs::is_regular_file(d / "tokenizer_config.json")) {
    try {
      const std::string text = io::read_small_file((d / "tokenizer_config.json").string(), 16u << 20);
      const auto j = io::parse_json_strict(text.data(), text.size(), (d / "tokenizer_config.json").string());
      if (j.is_object() && j.contains("tokenizer_class") && j["tokenizer_class"].is_string())
        cls = ", " + j["tokenizer_class"].get<std::string>();
      if (j.is_object() && j.contains("do_lower_case") && j["do_lower_case"].is_boolean())
        cls += j["do_lower_case"].get<bool>() ? ", lowercase" : ", cased";
    } catch (const Error& e) {
      problems->push_back(e.what());
    }
  }
  if (fs::is_regular_file(d / "tokenizer.json")) {
    const std::string path = (d / "tokenizer.json").string();
    try {
      const std::string text = io::read_small_file(path, 256u << 20);
      const auto j = io::parse_json_strict(text.data(), text.size(), path, 256);
      std::string type = "unknown model";
      size_t n = 0;
      if (j.is_object() && j.contains("model") && j["model"].is_object()) {
        const auto& m = j["model"];
        if (m.contains("type") && m["type"].is_string()) type = m["type"].get<std::string>();
        if (m.contains("vocab") && (m["vocab"].is_object() || m["vocab"].is_array())) {
          n = m["vocab"].size();
          if (m["vocab"].is_object())
            for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it)
              if (it.value().is_number_integer())
                *max_id = std::max<int64_t>(*max_id, it.value().get<int64_t>());
        }
      }
      if (j.is_object() && j.contains("added_tokens") && j["added_tokens"].is_array())
        for (const auto& a : j["added_tokens"])
          if (a.is_object() && a.contains("id") && a["id"].is_number_integer())
            *max_id = std::max<int64_t>(*max_id, a["id"].get<int64_t>());
      if (n == 0) problems->push_back(path + ": the model's vocabulary is empty (no tokenizer can load it)");
      if (type == "BPE" && j["pre_tokenizer"].is_object() &&
          j["pre_tokenizer"].value("type", "") == "ByteLevel")
        type = "byte-level BPE";
      return type + " (tokenizer.json, " + with_commas(static_cast<int64_t>(n)) + " tokens" + cls + ")";
    } catch (const Error& e) {
      problems->push_back(e.what());
      return "tokenizer.json unreadable";
    }
  }
  auto count_lines = [](const fs::path& p) {
    std::ifstream in(p);
    int64_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  if (fs::is_regular_file(d / "vocab.txt")) {
    const int64_t n = count_lines(d / "vocab.txt");
    *max_id = n - 1;
    if (n == 0) problems->push_back((d / "vocab.txt").string() + ": empty (no tokenizer can load it)");
    return "WordPiece (vocab.txt, " + with_commas(n) + " tokens" + cls + ")";
  }
  if (fs::is_regular_file(d / "vocab.json") && fs::is_regular_file(d / "merges.txt")) {
    try {
      const std::string path = (d / "vocab.json").string();
      const std::string text = io::read_small_file(path, 256u << 20);
      const auto j = io::parse_json_strict(text.data(), text.size(), path);
      for (auto it = j.begin(); j.is_object() && it != j.end(); ++it)
        if (it.value().is_number_integer()) *max_id = std::max<int64_t>(*max_id, it.value().get<int64_t>());
      if (!j.is_object() || j.empty()) problems->push_back(path + ": no tokens (no tokenizer can load it)");
      return "byte-level BPE (vocab.json + merges.txt, " + with_commas(static_cast<int64_t>(j.size())) +
             " tokens, " + with_commas(count_lines(d / "merges.txt") - 1) + " merges" + cls + ")";
    } catch (const Error& e) {
      problems->push_back(e.what());
      return "vocab.json unreadable";
    }
  }
  return "none found";
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> hf_encoder_parameters(const ModelConfig& c,
                                                                                bool with_pooler) {
  const std::string p = model_type_name(c.family) + std::string(".");
  const int64_t H = c.hidden_size, I = c.intermediate_size, E = c.embedding_width();
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {
      {p + "embeddings.word_embeddings.weight", {c.vocab_size, E}},
      {p + "embeddings.position_embeddings.weight", {c.max_position_embeddings, E}},
      {p + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, E}},
      {p + "embeddings.LayerNorm.weight", {E}},
      {p + "embeddings.LayerNorm.bias", {E}}};
  if (c.projects_embeddings()) {  // ELECTRA: embedding_size -> hidden_size
    out.push_back({p + "embeddings_project.weight", {H, E}});
    out.push_back({p + "embeddings_project.bias", {H}});
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string b = p + "encoder.layer." + std::to_string(l) + ".";
    for (const char* m :
         {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      out.push_back({b + m + ".weight", {H, H}});
      out.push_back({b + m + ".bias", {H}});
    }
    out.push_back({b + "attention.output.LayerNorm.weight", {H}});
    out.push_back({b + "attention.output.LayerNorm.bias", {H}});
    out.push_back({b + "intermediate.dense.weight", {I, H}});
    out.push_back({b + "intermediate.dense.bias", {I}});
    out.push_back({b + "output.dense.weight", {H, I}});
    out.push_back({b + "output.dense.bias", {H}});
    out.push_back({b + "output.LayerNorm.weight", {H}});
    out.push_back({b + "output.LayerNorm.bias", {H}});
  }
  if (with_pooler) {
    out.push_back({p + "pooler.dense.weight", {H, H}});
    out.push_back({p + "pooler.dense.bias", {H}});
  }
  return out;
}

std::string transformers_difference(const ModelConfig& config) {
  const auto settings = config.extra_json.find("bertfit");
  if (settings == config.extra_json.end() || config.id2label.empty()) return "";
  std::string features, chunks;
  try {
    const nlohmann::json j = nlohmann::json::parse(settings->second);
    features = j.value("features", "");
    chunks = j.value("chunk_pooling", "none");
  } catch (const nlohmann::json::exception&) {
    return "";  // the loaders name a malformed "bertfit" object themselves
  }
  const bool bert = config.family == ModelFamily::BERT;
  const std::string hf_class = std::string(bert                                    ? "Bert"
                                           : config.family == ModelFamily::ROBERTA ? "Roberta"
                                                                                   : "Electra") +
                               "ForSequenceClassification";
  std::string why;
  if (!features.empty() && features != (bert ? "pooler" : "cls"))
    why = "features '" + features + "': transformers' " + hf_class + " classifies " +
          (bert ? "through BERT's pooler (tanh(dense([CLS])))" : "the [CLS] token's final state") +
          (bert && (features == "cls" || features == "layer" || features == "mean-tokens")
               ? ", which this model does not use: from_pretrained would add a random pooler and predict "
                 "otherwise"
               : ", so from_pretrained would predict otherwise or refuse the classifier's shape");
  if (chunks != "none")
    why += std::string(why.empty() ? "" : "; ") + "chunk_pooling '" + chunks +
           "': transformers reads one sequence of at most max_position_embeddings tokens";
  return why.empty() ? "" : why + " (bertfit evaluate / predict / serve use the model as it was trained)";
}

InspectReport inspect_model_dir(const std::string& dir) {
  InspectReport r;
  r.dir = dir;
  if (!fs::is_directory(dir)) {
    r.problems.push_back(dir + ": not a directory");
    return r;
  }
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (fs::exists(cfg_path)) {
    try {
      r.config = parse_config_json(io::read_small_file(cfg_path, 16u << 20), cfg_path);
      r.has_config = true;
      try {
        r.config.validate();
      } catch (const ConfigError& e) {
        std::string msg = e.what();
        if (msg.rfind("config: ", 0) == 0) msg = msg.substr(8);
        r.problems.push_back(cfg_path + ": " + msg + " (bertfit cannot train this model)");
      }
    } catch (const Error& e) {
      r.problems.push_back(e.what());
    }
  } else {
    r.problems.push_back(dir + ": no config.json");
  }

  try {
    Checkpoint ck = Checkpoint::open(dir);
    r.weights_file = ck.weights_file();
    static const char* kFormats[] = {"safetensors", "safetensors, sharded", "torch zip",
                                     "torch zip, sharded"};
    r.weights_format = kFormats[static_cast<int>(ck.format())];
    if (ck.files().size() > 1) r.weights_format += " (" + std::to_string(ck.files().size()) + " files)";
    for (const auto& f : ck.files()) r.weights_bytes += fs::file_size(f);
    r.num_tensors = ck.tensors().size();
    // Parameters = distinct float values: tied weights, .t() views and slices share storage bytes, so count
    // the union of the byte ranges the float tensors cover.
    struct Range {
      const uint8_t* begin;
      const uint8_t* end;
      int bytes;
    };
    // An int8 model (bertfit quantize: quantization_config in config.json) stores each int8 weight's per-row
    // scales next to it as "<weight>_scale" [rows]; the weight keeps its name and shape. The weight of such a
    // scale tensor, else null.
    const bool quantized = r.has_config && r.config.extra_json.count("quantization_config") > 0;
    auto int8_weight_of_scale = [&](const TensorRef& t) -> const TensorRef* {
      const std::string& n = t.name;
      if (!quantized || n.size() <= 6 || n.compare(n.size() - 6, 6, "_scale") != 0) return nullptr;
      const TensorRef* w = ck.find(n.substr(0, n.size() - 6));
      return w && w->dtype == DType::I8 && !w->shape.empty() ? w : nullptr;
    };
    std::vector<Range> ranges;
    for (const TensorRef& t : ck.tensors()) {
      r.dtypes[dtype_name(t.dtype)]++;
      r.tensor_list.push_back({t.name, std::string(dtype_name(t.dtype)) + " " + shape_str(t.shape)});
      // Parameters are the float tensors and an int8 model's int8 weights (not integer buffers such as
      // position_ids, nor the int8 weights' scales).
      if ((!dtype_is_float(t.dtype) && t.dtype != DType::I8) || t.numel() == 0 || int8_weight_of_scale(t))
        continue;
      const int es = dtype_bits(t.dtype) / 8;
      size_t span = static_cast<size_t>(t.numel()) * es;
      if (!t.strides.empty()) {
        int64_t last = 0;
        for (size_t k = 0; k < t.shape.size(); ++k) last += (t.shape[k] - 1) * t.strides[k];
        span = static_cast<size_t>(last + 1) * es;
      }
      ranges.push_back({t.data, t.data + span, es});
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    const uint8_t* covered = nullptr;
    for (const Range& g : ranges) {
      const uint8_t* from = covered && covered > g.begin ? covered : g.begin;
      if (g.end > from) r.num_parameters += (g.end - from) / g.bytes;
      if (!covered || g.end > covered) covered = g.end;
    }
    if (auto it = ck.metadata().find("format"); !ck.metadata().empty()) {
      static const std::set<std::string> kOk = {"pt", "tf", "flax", "mlx"};
      if (it == ck.metadata().end() || !kOk.count(it->second))
        r.problems.push_back(r.weights_file +
                             ": __metadata__ has no \"format\" of pt/tf/flax/mlx; transformers "
                             "refuses such a file");
    }
    auto has = [&](const std::string& n) { return ck.find(n) != nullptr; };
    const std::string p = r.has_config ? model_type_name(r.config.family) + std::string(".") : "bert.";
    if (has(p + "pooler.dense.weight") || has("pooler.dense.weight")) r.heads.push_back("pooler");
    int64_t classifier_rows = -1;
    if (const TensorRef* w = ck.find("classifier.weight"); w && w->shape.size() == 2) {
      classifier_rows = w->shape[0];
      r.heads.push_back("classifier (" + std::to_string(classifier_rows) + " outputs)");
    }
    if (const TensorRef* w = ck.find("classifier.out_proj.weight"); w && w->shape.size() == 2) {
      classifier_rows = w->shape[0];
      r.heads.push_back("classifier.dense + out_proj (" + std::to_string(classifier_rows) + " outputs)");
    }
    if (has("cls.predictions.transform.dense.weight") || has("lm_head.dense.weight") ||
        has("generator_predictions.dense.weight"))
      r.heads.push_back("masked LM");
    if (has("discriminator_predictions.dense_prediction.weight"))
      r.heads.push_back("replaced-token detection (ELECTRA discriminator)");
    if (has("cls.seq_relationship.weight")) r.heads.push_back("next-sentence prediction");
    if (has("qa_outputs.weight")) r.heads.push_back("question answering");
    if (r.heads.empty()) r.heads.push_back("none (encoder only)");
    if (r.has_config && classifier_rows >= 0 && classifier_rows != r.config.num_labels())
      r.problems.push_back(r.weights_file + ": the classifier has " + std::to_string(classifier_rows) +
                           " outputs but config.json has " + std::to_string(r.config.num_labels()) +
                           " labels");
    if (r.has_config) {
      // The encoder the config describes must be in the weights: validate without copying (dest = null).
      std::vector<ExpectedTensor> expected;
      for (auto& [name, shape] : hf_encoder_parameters(r.config, true))
        expected.push_back({name, shape, nullptr, name.find(".pooler.") != std::string::npos});
      for (const TensorRef& t : ck.tensors())
        if (const TensorRef* w = int8_weight_of_scale(t))
          expected.push_back({t.name, {w->shape[0]}, nullptr, false});
      try {
        load_into(ck, model_type_name(r.config.family), expected);
      } catch (const FormatError& e) {
        r.problems.push_back(e.what());
      }
    }
  } catch (const Error& e) {
    r.problems.push_back(e.what());
  }

  if (r.has_config)
    if (const std::string d = transformers_difference(r.config); !d.empty()) r.notes.push_back(d);
  int64_t max_id = -1;
  r.tokenizer = describe_tokenizer(dir, &max_id, &r.problems);
  if (r.tokenizer == "none found")
    r.notes.push_back("no tokenizer files (tokenizer.json, vocab.txt, or vocab.json + merges.txt)");
  if (r.has_config && max_id >= r.config.vocab_size)
    r.problems.push_back(dir + ": the tokenizer produces ids up to " + std::to_string(max_id) +
                         " but the embeddings have only " + std::to_string(r.config.vocab_size) + " rows");
  return r;
}

std::string format_inspect_report(const InspectReport& r, bool list_tensors) {
  std::string out;
  auto line = [&](const char* field, const std::string& value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%-13s", field);
    out += buf + value + "\n";
  };
  line("directory", r.dir);
  if (r.has_config) {
    const ModelConfig& c = r.config;
    std::string arch = model_type_name(c.family);
    if (!c.architectures.empty()) {
      arch += " (";
      for (size_t i = 0; i < c.architectures.size(); ++i) arch += (i ? ", " : "") + c.architectures[i];
      arch += ")";
    }
    line("architecture", arch);
    line("sizes", std::to_string(c.num_hidden_layers) + " layers, hidden " + std::to_string(c.hidden_size) +
                      ", " + std::to_string(c.num_attention_heads) + " heads" +
                      (c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0
                           ? " of " + std::to_string(c.head_dim())
                           : std::string()) +
                      ", intermediate " + std::to_string(c.intermediate_size) + ", vocab " +
                      std::to_string(c.vocab_size) + ", positions " +
                      std::to_string(c.max_position_embeddings) + ", token types " +
                      std::to_string(c.type_vocab_size));
    char eps[32];
    std::snprintf(eps, sizeof eps, "%g", static_cast<double>(c.layer_norm_eps));
    line("details", c.hidden_act + ", layer_norm_eps " + eps + ", pad id " + std::to_string(c.pad_token_id));
    std::string labels = std::to_string(c.num_labels()) + ":";
    for (int64_t i = 0; i < c.num_labels() && i < 20; ++i)
      labels += " " + (c.id2label.empty() ? "LABEL_" + std::to_string(i) : c.id2label[i]);
    if (c.num_labels() > 20) labels += " ...";
    labels += c.problem_type_set ? std::string(", ") + problem_type_name(c.problem_type)
                                 : ", problem_type not set (inferred from the labels when training)";
    line("labels", labels);
    if (const auto q = c.extra_json.find("quantization_config"); q != c.extra_json.end()) {
      std::string method = "unknown method";
      try {
        const nlohmann::json j = nlohmann::json::parse(q->second);
        if (j.contains("quant_method") && j["quant_method"].is_string())
          method = j["quant_method"].get<std::string>();
        if (j.contains("bits") && j["bits"].is_number_integer())
          method += ", " + std::to_string(j["bits"].get<int>()) + "-bit weights";
      } catch (const nlohmann::json::exception&) {
        method = "unreadable quantization_config";
      }
      line("quantization", method);
    }
  }
  if (!r.weights_file.empty()) {
    line("weights", fs::path(r.weights_file).filename().string() + " (" + r.weights_format + ", " +
                        human_bytes(r.weights_bytes) + "), " + std::to_string(r.num_tensors) + " tensors");
    line("parameters", with_commas(r.num_parameters) + " (" + human_count(r.num_parameters) + ")");
    std::string d;
    for (const auto& [name, n] : r.dtypes) d += (d.empty() ? "" : ", ") + name + " x" + std::to_string(n);
    line("dtype", d);
    std::string h;
    for (const auto& x : r.heads) h += (h.empty() ? "" : ", ") + x;
    line("heads", h);
  }
  line("tokenizer", r.tokenizer);
  for (const auto& n : r.notes) line("note", n);
  if (r.problems.empty()) line("problems", "none");
  // A problem may list many tensors; at a glance, the first lines and a count are enough.
  for (const auto& p : r.problems) {
    std::string shown;
    size_t lines = 0, pos = 0;
    for (; pos < p.size() && lines < 12; ++lines) {
      const size_t nl = p.find('\n', pos);
      shown += p.substr(pos, nl == std::string::npos ? std::string::npos : nl + 1 - pos);
      pos = nl == std::string::npos ? p.size() : nl + 1;
    }
    if (pos < p.size()) {
      size_t rest = 1;
      for (size_t i = pos; i < p.size(); ++i) rest += p[i] == '\n';
      shown += "  ... and " + std::to_string(rest) + " more (the full list: load the model, or --tensors)";
    }
    if (!shown.empty() && shown.back() == '\n') shown.pop_back();
    line("PROBLEM", shown);
  }
  if (list_tensors)
    for (const auto& [name, desc] : r.tensor_list) out += "  " + name + "  " + desc + "\n";
  return out;
}

}  // namespace bertfit
