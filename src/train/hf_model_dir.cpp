#include "train/hf_model_dir.h"

#include <map>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "train/quantized_model.h"

namespace bertfit {

ClassifierSettings read_classifier_settings(const ModelConfig& config) {
  ClassifierSettings s;
  auto it = config.extra_json.find("bertfit");
  if (it == config.extra_json.end()) return s;
  try {
    const auto j = nlohmann::json::parse(it->second);
    if (j.contains("features")) s.head.features = parse_feature_kind(j.at("features").get<std::string>());
    if (j.contains("feature_layer")) s.head.layer = j.at("feature_layer").get<int64_t>();
    if (j.contains("chunk_pooling"))
      s.head.chunk_pooling = parse_chunk_pooling(j.at("chunk_pooling").get<std::string>());
    if (j.contains("max_seq_length")) s.max_seq_length = j.at("max_seq_length").get<int>();
    if (j.contains("truncation")) s.truncation = j.at("truncation").get<std::string>();
    if (j.contains("head_length")) s.head_length = j.at("head_length").get<int>();
    if (j.contains("max_chunks")) s.max_chunks = j.at("max_chunks").get<int>();
    if (j.contains("multi_label_threshold"))
      s.multi_label_threshold = j.at("multi_label_threshold").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(std::string("config.json: field \"bertfit\" is malformed: ") + e.what());
  }
  if (!(s.multi_label_threshold > 0 && s.multi_label_threshold < 1))
    throw ConfigError("config.json: bertfit.multi_label_threshold must be in (0, 1)");
  return s;
}

void write_classifier_settings(ModelConfig* config, const ClassifierSettings& s, bool with_threshold) {
  nlohmann::ordered_json j;
  j["features"] = feature_kind_name(s.head.features);
  j["feature_layer"] = s.head.layer;
  j["chunk_pooling"] = chunk_pooling_name(s.head.chunk_pooling);
  j["max_seq_length"] = s.max_seq_length;
  j["truncation"] = s.truncation;
  j["head_length"] = s.head_length;
  j["max_chunks"] = s.max_chunks;
  if (config->problem_type == ProblemType::MULTI_LABEL || with_threshold)
    j["multi_label_threshold"] = s.multi_label_threshold;
  config->extra_json["bertfit"] = j.dump();
}

namespace {
bool is_head_param(const BertModel& m, const ParamEntry& e) {
  return e.depth == m.config().num_hidden_layers + 1;
}
}  // namespace

LoadedModel load_pretrained(const std::string& dir, HeadKind head, const HeadOptions& options,
                            const ModelConfig* config_override, uint64_t init_seed) {
  ModelConfig config = config_override ? *config_override : read_config_json(dir + "/config.json");
  reject_quantized(config, dir, "loading it as a float model (finetune, pretrain)");
  LoadedModel out;
  out.model = std::make_unique<BertModel>(config, head, options);
  BertModel& m = *out.model;
  const Checkpoint ckpt = Checkpoint::open(dir);
  std::vector<ExpectedTensor> expected;
  for (const ParamEntry& e : m.table().entries())
    expected.push_back({e.name, e.shape, m.params() + e.offset, is_head_param(m, e)});
  const LoadReport report = load_into(ckpt, m.prefix(), expected, /*reinit_mismatched_optional=*/true);
  out.initialized = report.missing_initialized;
  out.ignored = report.ignored;
  if (!out.initialized.empty()) m.init_weights(init_seed, &out.initialized);
  return out;
}

namespace {
// The model's tensors under `names` (the table's, or head k's HF names), with config.json, into dir.
void save_tensors(const BertModel& model, ModelConfig config, const std::vector<const ParamEntry*>& entries,
                  const std::vector<std::string>& names, const std::string& dir, const Tokenizer* tokenizer) {
  const std::string family = config.family == ModelFamily::BERT      ? "Bert"
                             : config.family == ModelFamily::ROBERTA ? "Roberta"
                                                                     : "Electra";
  if (model.head() == HeadKind::SEQUENCE_CLASSIFICATION)
    config.architectures = {family + "ForSequenceClassification"};
  else if (model.head() == HeadKind::MASKED_LM)
    config.architectures = {family + "ForMaskedLM"};
  else if (model.head() == HeadKind::REPLACED_TOKEN_DETECTION)
    config.architectures = {"ElectraForPreTraining"};
  else
    config.architectures = {family + "Model"};
  std::vector<TensorRef> tensors;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ParamEntry& e = *entries[i];
    TensorRef t;
    t.name = names[i];
    t.dtype = DType::F32;
    t.shape = e.shape;
    t.data = reinterpret_cast<const uint8_t*>(model.params() + e.offset);
    t.nbytes = e.numel * sizeof(float);
    tensors.push_back(std::move(t));
  }
  save_model_dir(dir, config, tensors, [&](const std::string& staging) {
    if (tokenizer) tokenizer->save(staging);
  });
}
}  // namespace

void save_pretrained(const BertModel& model, const std::string& dir, const Tokenizer* tokenizer) {
  std::vector<const ParamEntry*> entries;
  std::vector<std::string> names;
  for (const ParamEntry& e : model.table().entries()) {
    entries.push_back(&e);
    names.push_back(e.name);
  }
  // Multi-task: whichever head a step left selected, the file's HF-named head is the model's own (head 0).
  ModelConfig config = model.config();
  if (model.num_heads() > 1) {
    config.id2label = model.head_labels(0);
    config.problem_type = model.head_problem_type(0);
  }
  save_tensors(model, config, entries, names, dir, tokenizer);
}

void save_pretrained_head(const BertModel& model, int64_t head, const std::string& dir,
                          const Tokenizer* tokenizer) {
  // Every head's own parameters, by the head they belong to; the rest (encoder, BERT's pooler) is shared.
  std::map<std::string, int64_t> owner;
  for (int64_t k = 0; k < model.num_heads(); ++k)
    for (const std::string& n : model.head_param_names(k)) owner[n] = k;
  std::vector<const ParamEntry*> entries;
  std::vector<std::string> names;
  const size_t strip = model.head_prefix(head).size();
  for (const ParamEntry& e : model.table().entries()) {
    const auto it = owner.find(e.name);
    if (it != owner.end() && it->second != head) continue;
    entries.push_back(&e);
    names.push_back(it == owner.end() ? e.name : e.name.substr(strip));
  }
  ModelConfig config = model.config();
  config.id2label = model.head_labels(head);
  config.problem_type = model.head_problem_type(head);  // HF builds the head's loss from it
  config.problem_type_set = true;
  save_tensors(model, config, entries, names, dir, tokenizer);
}

}  // namespace bertfit
