#include "train/pretrain.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "core/threading.h"
#include "data/dataset.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "kernels/adamw.h"
#include "train/batching.h"
#include "train/checkpoints.h"
#include "train/electra_pretrain.h"
#include "train/encoded_data.h"
#include "train/hf_model_dir.h"
#include "train/mlm_batch.h"
#include "train/model_factory.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/schedule.h"

namespace fs = std::filesystem;

namespace bertfit {

namespace {

// The held-out set is masked with this epoch key at every evaluation (training epochs never reach it).
constexpr uint64_t kEvalEpochKey = 0xE7A1E7A1E7A1ull;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void require(bool ok, const char* option, const std::string& what) {
  if (!ok) throw ConfigError(std::string("option --") + option + ": " + what);
}

// A seeded subset (order kept) of k of the n indices.
std::vector<int64_t> sample_indices(int64_t n, int64_t k, uint64_t seed) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (k <= 0 || k >= n) return idx;
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[rng.below(static_cast<uint64_t>(i + 1))]);
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<std::string> take(const std::vector<std::string>& v, const std::vector<int64_t>& idx) {
  std::vector<std::string> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(v[i]);
  return out;
}

EvalMetrics named_metrics(const MlmEvalResult& e, int64_t blocks) {
  EvalMetrics m;
  m.values = {{"loss", e.loss},
              {"perplexity", e.perplexity},
              {"masked_tokens", static_cast<double>(e.masked_tokens)}};
  m.runtime = e.runtime;
  m.samples = blocks;
  return m;
}

MlmEvalResult mlm_result(const EvalMetrics& m) {
  MlmEvalResult r;
  r.loss = m.value("loss");
  r.perplexity = m.value("perplexity");
  r.masked_tokens = static_cast<int64_t>(m.value("masked_tokens"));
  r.runtime = m.runtime;
  for (const auto& [n, v] : m.values)
    if (n == "discriminator_loss") {
      r.electra = true;
      r.generator_loss = m.value("generator_loss");
      r.discriminator_loss = v;
      r.discriminator_accuracy = m.value("discriminator_accuracy");
      r.replaced_share = m.value("replaced_share");
    }
  return r;
}

}  // namespace

// The paper's further pre-training (lr 5e-5), BERT's weight decay (0.01), run_mlm's 3 epochs, the seed's
// block size (256).
PretrainArgs::PretrainArgs() : TrainingArgs(TaskDefaults{5e-5, 0.01, 3, 32, 64, 256}) {}

void PretrainArgs::own_fields_to_json(nlohmann::ordered_json* out) const {
  nlohmann::ordered_json& j = *out;
  BF_JSON_FIELDS(j, model_type, model_size, hidden_size, num_hidden_layers, num_attention_heads,
                 intermediate_size, max_position_embeddings, tokenizer_name, train_tokenizer, vocab_size,
                 do_lower_case, train_file, train_table, validation_split_percentage, line_by_line,
                 mlm_probability, whole_word_mask, objective, generator_size_ratio, discriminator_loss_weight,
                 embedding_size);
}

void PretrainArgs::validate() const {
  TrainingArgs::validate();
  require(!train_file.empty() || !train_table.empty(), "train_file",
          "or --train_table: at least one text source is required");
  check_choice("model_type", model_type, {"bert", "roberta", "electra"});
  check_choice("objective", objective, {"mlm", "electra"});
  if (objective == "electra")
    require(model_type != "roberta", "objective",
            "electra trains an ELECTRA model (its own family, BERT's WordPiece tokenizer): not with "
            "--model_type roberta");
  require(generator_size_ratio > 0 && generator_size_ratio <= 1, "generator_size_ratio", "must be in (0, 1]");
  require(discriminator_loss_weight > 0, "discriminator_loss_weight", "must be > 0");
  require(embedding_size >= 0, "embedding_size", "must be >= 0 (0: hidden_size)");
  if (!model_size.empty())
    check_choice("model_size", model_size, {"tiny", "mini", "small", "medium", "base"});
  require(vocab_size >= 100 && vocab_size <= 1000000, "vocab_size", "must be in [100, 1000000]");
  require(max_position_embeddings >= 8 && max_position_embeddings <= 65536, "max_position_embeddings",
          "must be in [8, 65536]");
  require(validation_split_percentage >= 0 && validation_split_percentage < 100,
          "validation_split_percentage", "must be in [0, 100)");
  require(mlm_probability > 0 && mlm_probability <= 1, "mlm_probability", "must be in (0, 1]");
  if (!model_size.empty() || hidden_size > 0)
    require(model_name_or_path.empty(), "model_size",
            "and --hidden_size describe a new model: not with --model");
}

std::vector<std::string> read_text_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open");
  std::vector<std::string> lines;
  std::string line;
  // Progress for large corpora (file_read_progress shows nothing for small files), counted in bytes.
  std::error_code size_error;
  const auto size = static_cast<int64_t>(fs::file_size(path, size_error));
  const auto show = file_read_progress(path);
  int64_t done = 0, next_report = int64_t{1} << 20;
  while (std::getline(in, line)) {
    done += static_cast<int64_t>(line.size()) + 1;
    if (!size_error && done >= next_report && done < size) {
      show(done, size);
      next_report = done + (int64_t{1} << 20);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\v\f") == std::string::npos) continue;  // blank: skipped as run_mlm
    lines.push_back(std::move(line));
  }
  if (in.bad()) throw FormatError(path + ": read error");
  if (!size_error) show(size, size);
  return lines;
}

std::vector<std::string> read_table_texts(const std::string& path, const PretrainArgs& args) {
  data::DatasetSpec spec;
  spec.table.format = data::parse_file_format(args.format);
  spec.table.quoting = data::parse_quoting(args.quoting);
  spec.text_columns = args.text_columns;
  spec.text_separator = args.text_separator;
  spec.label_column = "";  // the text only: unlabelled test files are text too (within-task = train + test)
  const data::Dataset ds = read_data_file(path, spec);
  std::vector<std::string> out;
  out.reserve(ds.examples.size());
  for (const auto& e : ds.examples) out.push_back(e.text);
  return out;
}

std::vector<EncodedExample> make_blocks(const Tokenizer& tok, const std::vector<std::string>& lines,
                                        int max_seq_length, bool line_by_line, int threads) {
  if (max_seq_length < tok.num_special_tokens(false) + 1)
    throw ConfigError("--max_seq_length " + std::to_string(max_seq_length) +
                      " cannot hold the special tokens");
  const int64_t n = static_cast<int64_t>(lines.size());
  std::vector<std::vector<std::vector<int32_t>>> per_line(static_cast<size_t>(n));
  parallel_for_with_progress("tokenize", "lines", n, threads, [&](int64_t i) {
    if (line_by_line) {
      for (const Encoding& c : encode_chunks(tok, lines[i], max_seq_length)) per_line[i].push_back(c.ids);
    } else {
      per_line[i].push_back(tok.encode(lines[i]).ids);
    }
  });
  std::vector<EncodedExample> blocks;
  auto add = [&](std::vector<int32_t> ids) {
    EncodedExample e;
    e.tokens = static_cast<int64_t>(ids.size());
    e.seqs.push_back({std::move(ids), {}});
    blocks.push_back(std::move(e));
  };
  if (line_by_line) {
    for (auto& l : per_line)
      for (auto& c : l) add(std::move(c));
    return blocks;
  }
  // group_texts: the lines joined (each with its own special tokens), cut every max_seq_length tokens; the
  // last, shorter block is kept (run_mlm drops it; on a small corpus that can be a large share).
  std::vector<int32_t> cur;
  for (auto& l : per_line)
    for (int32_t id : l[0]) {
      cur.push_back(id);
      if (static_cast<int>(cur.size()) == max_seq_length) add(std::move(cur)), cur.clear();
    }
  if (!cur.empty()) add(std::move(cur));
  return blocks;
}

MlmEvalResult evaluate_mlm(BertModel& model, const std::vector<EncodedExample>& blocks,
                           const MlmMasker& masker, int batch_size, int32_t pad_id, uint64_t epoch_key) {
  MlmEvalResult r;
  const auto plan = plan_eval_batches(blocks, batch_size);
  MlmBatchBuilder builder;
  // Data-parallel: each rank evaluates its share of the batches; the per-batch sums are summed over the
  // ranks (the others' entries are zeros: exact) and added in batch order, as one process does.
  dist::Communicator& comm = dist::world();
  const dist::Range mine = dist::shard(static_cast<int64_t>(plan.size()), comm.rank(), comm.size());
  Progress progress("eval", mine.size(), std::max<int64_t>(25, mine.size() / 4));
  int64_t max_T = 1;
  for (const auto& b : blocks) max_T = std::max(max_T, b.length());
  std::vector<double> batch_loss(plan.size(), 0.0), batch_masked(plan.size(), 0.0);
  int64_t reserved = -1;
  for (size_t bi = static_cast<size_t>(mine.begin); bi < static_cast<size_t>(mine.end); ++bi) {
    int64_t labelled = 0;
    const Batch b = builder.build(blocks, plan[bi], masker, pad_id, epoch_key, &labelled);
    if (reserved < 0) {  // the model may be reserved for other shapes: reserve for this evaluation
      reserved = initial_rows(batch_size, max_T, masker.options().mlm_probability);
      model.reserve(batch_size, max_T, reserved);
    }
    ensure_rows(model, batch_size, max_T, &reserved, labelled);
    if (labelled > 0) batch_loss[bi] = model.forward(b, /*training=*/false, 0, /*loss_normalizer=*/1.0f);
    batch_masked[bi] = static_cast<double>(labelled);  // exact: far below 2^53
    progress.update(static_cast<int64_t>(bi + 1) - mine.begin);
  }
  if (comm.size() > 1) {
    dist::OrderedSum<double>{comm}(batch_loss.data(), static_cast<int64_t>(batch_loss.size()));
    dist::OrderedSum<double>{comm}(batch_masked.data(), static_cast<int64_t>(batch_masked.size()));
  }
  double sum = 0;
  for (size_t bi = 0; bi < plan.size(); ++bi) {
    sum += batch_loss[bi];
    r.masked_tokens += static_cast<int64_t>(batch_masked[bi]);
  }
  r.runtime = progress.elapsed_seconds();
  r.loss = r.masked_tokens > 0 ? sum / static_cast<double>(r.masked_tokens) : 0.0;
  r.perplexity = std::exp(r.loss);
  return r;
}

namespace {

// Masked-LM pre-training as a task of the training loop: blocks of text, masked per (seed, epoch, block), the
// loss normalised by the masked tokens of a step (HF's num_items_in_batch), evaluated by the held-out loss
// per masked token (masks keyed by kEvalEpochKey: the same at every evaluation).
class MlmTask : public TrainingTask {
 public:
  MlmTask(const std::vector<EncodedExample>& train, const std::vector<EncodedExample>& eval,
          const MlmMasker& masker, int32_t pad_id, int64_t max_B, int64_t max_T, int eval_batch_size,
          int64_t* reserved)
      : train_(train),
        eval_(eval),
        masker_(masker),
        pad_id_(pad_id),
        max_B_(max_B),
        max_T_(max_T),
        eval_batch_size_(eval_batch_size),
        reserved_(reserved) {}

  const std::vector<EncodedExample>& train_examples() const override { return train_; }
  // Masks of the whole step first: the normaliser is the step's masked-token count.
  float begin_step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t epoch) override {
    micro_ = &micro_batches;
    epoch_ = static_cast<uint64_t>(epoch);
    labelled_.assign(micro_batches.size(), 0);
    int64_t total = 0;
    for (size_t k = 0; k < micro_batches.size(); ++k) {
      builder_.build(train_, micro_batches[k], masker_, pad_id_, epoch_, &labelled_[k]);
      total += labelled_[k];
    }
    return static_cast<float>(std::max<int64_t>(total, 1));
  }
  bool micro_batch(BertModel& model, size_t k, Batch* batch) override {
    if (labelled_[k] == 0) return false;  // no masked token: contributes nothing to loss or gradient
    int64_t n = 0;
    *batch = builder_.build(train_, (*micro_)[k], masker_, pad_id_, epoch_, &n);
    ensure_rows(model, max_B_, max_T_, reserved_, n);
    return true;
  }
  bool has_eval_data() const override { return !eval_.empty(); }
  EvalMetrics evaluate(BertModel& model, const std::string& /*what*/) override {
    const MlmEvalResult e = evaluate_mlm(model, eval_, masker_, eval_batch_size_, pad_id_, kEvalEpochKey);
    *reserved_ = initial_rows(max_B_, max_T_, masker_.options().mlm_probability);
    model.reserve(max_B_, max_T_, *reserved_);  // back to the training shape
    return named_metrics(e, static_cast<int64_t>(eval_.size()));
  }
  BestModelMetric best_metric() const override { return {"loss", false}; }
  std::string describe(const EvalMetrics& e) const override {
    return "loss " + fmt("%.4f", e.value("loss")) + ", perplexity " + fmt("%.2f", e.value("perplexity"));
  }
  bool evaluate_on_start() const override { return true; }
  std::string progress_name() const override { return "pretrain"; }

 private:
  const std::vector<EncodedExample>& train_;
  const std::vector<EncodedExample>& eval_;
  const MlmMasker& masker_;
  int32_t pad_id_;
  int64_t max_B_, max_T_;
  int eval_batch_size_;
  int64_t* reserved_;
  const std::vector<std::vector<int64_t>>* micro_ = nullptr;
  uint64_t epoch_ = 0;
  std::vector<int64_t> labelled_;
  MlmBatchBuilder builder_;
};

}  // namespace

PretrainResult pretrain(const PretrainArgs& args, const LoopHooks& hooks) {
  args.validate();
  set_num_threads(args.threads);
  const int threads = num_threads();
  const std::string ck = prepare_output_dir(args);
  const bool resuming = !ck.empty();

  // Text, split into training and held-out lines.
  std::vector<std::string> lines;
  for (const auto& f : args.train_file) {
    auto l = read_text_lines(f);
    log_message("text: " + f + ": " + std::to_string(l.size()) + " lines");
    lines.insert(lines.end(), std::make_move_iterator(l.begin()), std::make_move_iterator(l.end()));
  }
  for (const auto& f : args.train_table) {
    auto l = read_table_texts(f, args);
    log_message("text: " + f + " (table): " + std::to_string(l.size()) + " texts");
    lines.insert(lines.end(), std::make_move_iterator(l.begin()), std::make_move_iterator(l.end()));
  }
  if (lines.empty()) throw ConfigError("no text in the training sources");
  std::vector<std::string> train_lines, eval_lines;
  if (!args.validation_file.empty()) {
    train_lines = std::move(lines);
    eval_lines = read_text_lines(args.validation_file);
  } else {
    const int64_t n = static_cast<int64_t>(lines.size());
    int64_t k =
        static_cast<int64_t>(std::llround(static_cast<double>(n) * args.validation_split_percentage / 100));
    if (args.validation_split_percentage > 0 && n >= 2) k = std::clamp<int64_t>(k, 1, n - 1);
    std::vector<uint8_t> held(static_cast<size_t>(n), 0);
    for (int64_t i : sample_indices(n, k, args.seed ^ 0x4E1Dull)) held[i] = k > 0;
    for (int64_t i = 0; i < n; ++i) (held[i] ? eval_lines : train_lines).push_back(std::move(lines[i]));
  }
  if (args.max_train_samples > 0)
    train_lines = take(train_lines, sample_indices(static_cast<int64_t>(train_lines.size()),
                                                   args.max_train_samples, args.seed ^ 0x7A1Eull));
  if (args.max_eval_samples > 0)
    eval_lines = take(eval_lines, sample_indices(static_cast<int64_t>(eval_lines.size()),
                                                 args.max_eval_samples, args.seed ^ 0xE7A1ull));
  if (train_lines.empty()) throw ConfigError("no training lines left after the held-out split");

  // Tokenizer.
  std::string tok_dir = resuming                       ? ck
                        : !args.tokenizer_name.empty() ? args.tokenizer_name
                                                       : args.model_name_or_path;
  if (tok_dir.empty()) {
    // A new model without a tokenizer gets one trained on its text: a model from nothing is one command.
    if (!args.train_tokenizer)
      log_message("no --tokenizer given: training a vocabulary of up to " + std::to_string(args.vocab_size) +
                  " on the training text (as --train_tokenizer)");
    tok_dir = args.output_dir + "/tokenizer";
    const std::string corpus = args.output_dir + "/tokenizer-corpus.txt";
    {
      std::string text;
      for (const auto& l : train_lines) text += l + "\n";
      write_file_atomic(corpus, text);
    }
    auto progress = std::make_shared<PhaseProgress>("train tokenizer");
    auto report = [progress](const std::string& phase, int64_t done, int64_t total) {
      (*progress)(phase, done, total);
    };
    if (args.model_type == "roberta") {
      BpeTrainerOptions o;
      o.vocab_size = args.vocab_size;
      o.progress = report;
      train_bpe({corpus}, o, tok_dir);
    } else {
      WordPieceTrainerOptions o;
      o.vocab_size = args.vocab_size;
      o.lowercase = args.do_lower_case;
      o.progress = report;
      train_wordpiece({corpus}, o, tok_dir);
    }
    fs::remove(corpus);
    progress->finish();
  }
  const Tokenizer tok = Tokenizer::from_directory(tok_dir);
  if (tok.mask_id() < 0) throw ConfigError(tok_dir + ": the tokenizer has no mask token");

  // Model (ELECTRA: the discriminator; its generator below).
  const bool electra = args.objective == "electra";
  const HeadKind head = electra ? HeadKind::REPLACED_TOKEN_DETECTION : HeadKind::MASKED_LM;
  auto with_dropout = [&](ModelConfig config) {
    if (args.hidden_dropout_prob >= 0)
      config.hidden_dropout_prob = static_cast<float>(args.hidden_dropout_prob);
    if (args.attention_probs_dropout_prob >= 0)
      config.attention_probs_dropout_prob = static_cast<float>(args.attention_probs_dropout_prob);
    return config;
  };
  std::unique_ptr<BertModel> model_ptr;
  std::string model_dir;  // the directory the model came from ("" for a new one)
  if (resuming || !args.model_name_or_path.empty()) {
    const std::string dir = resuming ? ck : args.model_name_or_path;
    model_dir = dir;
    ModelConfig config = with_dropout(read_config_json(dir + "/config.json"));
    if (electra && config.family != ModelFamily::ELECTRA)
      throw ConfigError(dir +
                        ": --objective electra continues an ELECTRA model (model_type \"electra\"), not " +
                        model_type_name(config.family));
    LoadedModel loaded = load_pretrained(dir, head, {}, &config, args.seed);
    if (!loaded.initialized.empty() && !resuming) {
      std::string s = "newly initialised (not in the checkpoint):";
      for (const auto& n : loaded.initialized) s += " " + n;
      log_message(s);
    }
    model_ptr = std::move(loaded.model);
  } else {
    const ModelFamily family = electra || args.model_type == "electra" ? ModelFamily::ELECTRA
                               : args.model_type == "roberta"          ? ModelFamily::ROBERTA
                                                                       : ModelFamily::BERT;
    ModelConfig config = named_config(args.model_size.empty() ? "mini" : args.model_size, family, tok,
                                      args.max_position_embeddings);
    if (args.hidden_size > 0) config.hidden_size = args.hidden_size;
    if (args.num_hidden_layers > 0) config.num_hidden_layers = args.num_hidden_layers;
    if (args.num_attention_heads > 0) config.num_attention_heads = args.num_attention_heads;
    config.intermediate_size = args.intermediate_size > 0 ? args.intermediate_size
                               : args.hidden_size > 0     ? 4 * args.hidden_size
                                                          : config.intermediate_size;
    if (args.hidden_dropout_prob >= 0)
      config.hidden_dropout_prob = static_cast<float>(args.hidden_dropout_prob);
    if (args.attention_probs_dropout_prob >= 0)
      config.attention_probs_dropout_prob = static_cast<float>(args.attention_probs_dropout_prob);
    if (family == ModelFamily::ELECTRA && args.embedding_size > 0)
      config.embedding_size = args.embedding_size;
    config.validate();
    model_ptr = std::make_unique<BertModel>(config, head);
    model_ptr->init_weights(args.seed);
  }
  BertModel& model = *model_ptr;
  const ModelConfig& config = model.config();
  if (tok.id_upper_bound() > config.vocab_size)
    throw ConfigError(tok_dir + ": the tokenizer has ids up to " + std::to_string(tok.id_upper_bound() - 1) +
                      " but the model's vocab_size is " + std::to_string(config.vocab_size));
  model.dropout_seed = args.seed;
  model.matmul_precision = args.bf16 ? MatmulPrecision::BF16 : MatmulPrecision::FP32;
  // ELECTRA's generator: from <model>/generator when there is one (a resumed run's checkpoint always has
  // it), else new, its shape from the discriminator's and its shared embeddings the discriminator's.
  std::unique_ptr<BertModel> generator;
  if (electra) {
    const std::string gdir = model_dir.empty() ? "" : model_dir + "/generator";
    if (!gdir.empty() && fs::exists(gdir + "/config.json")) {
      const ModelConfig gc = with_dropout(read_config_json(gdir + "/config.json"));
      generator = std::move(load_pretrained(gdir, HeadKind::MASKED_LM, {}, &gc, args.seed ^ 0x6E17ull).model);
    } else {
      if (resuming)
        throw FormatError(ck + ": no generator/ (an ELECTRA checkpoint keeps its generator there)");
      generator = std::make_unique<BertModel>(electra_generator_config(config, args.generator_size_ratio),
                                              HeadKind::MASKED_LM);
      generator->init_weights(args.seed ^ 0x6E17ull);
    }
    generator->dropout_seed = args.seed ^ 0x6E17ull;
    copy_shared_embeddings(model, *generator);
  }
  const int64_t max_positions =
      config.max_position_embeddings - (config.family == ModelFamily::ROBERTA ? config.pad_token_id + 1 : 0);
  const int block = static_cast<int>(std::min<int64_t>(args.max_seq_length, max_positions));
  if (block < args.max_seq_length)
    log_message("note: max_seq_length " + std::to_string(args.max_seq_length) + " exceeds the model's " +
                std::to_string(max_positions) + " positions; using " + std::to_string(block));

  // Blocks and masks.
  const auto train_blocks = make_blocks(tok, train_lines, block, args.line_by_line, threads);
  const auto eval_blocks = make_blocks(tok, eval_lines, block, args.line_by_line, threads);
  MaskingOptions mo;
  mo.mlm_probability = args.mlm_probability;
  mo.whole_word = args.whole_word_mask;
  mo.seed = args.seed;
  const MlmMasker masker(tok, mo);
  {
    int64_t tokens = 0;
    for (const auto& b : train_blocks) tokens += b.length();
    log_message("data: " + std::to_string(train_lines.size()) + " training lines -> " +
                std::to_string(train_blocks.size()) + " blocks (" + std::to_string(tokens) + " tokens, " +
                (args.line_by_line ? "line by line" : "concatenated") + ", block " + std::to_string(block) +
                "); " + std::to_string(eval_lines.size()) + " held-out lines -> " +
                std::to_string(eval_blocks.size()) + " blocks");
    log_message("model: " + std::string(family_display_name(config.family)) + ", " +
                std::to_string(config.num_hidden_layers) + " layers, hidden " +
                std::to_string(config.hidden_size) + ", vocab " + std::to_string(config.vocab_size) + ", " +
                std::to_string(model.table().num_parameters()) + " parameters" +
                (generator ? "; ELECTRA generator hidden " + std::to_string(generator->config().hidden_size) +
                                 ", " + std::to_string(generator->config().num_attention_heads) + " heads, " +
                                 std::to_string(generator->table().num_parameters()) +
                                 " parameters (embeddings shared), discriminator loss weight " +
                                 fmt("%g", args.discriminator_loss_weight)
                           : std::string()) +
                "; masking " + fmt("%.2f", args.mlm_probability) +
                (args.whole_word_mask ? " whole words (a CJK character is a word)" : " tokens") +
                (args.bf16 ? "; bf16 products" : "") + "; " + std::to_string(threads) + " threads");
  }
  int64_t max_T = 1;
  for (const auto* set : {&train_blocks, &eval_blocks})
    for (const auto& b : *set) max_T = std::max(max_T, b.length());
  const int64_t max_B = args.per_device_train_batch_size;
  int64_t reserved = initial_rows(max_B, max_T, args.mlm_probability);
  if (!electra) model.reserve(max_B, max_T, reserved);  // the ELECTRA task reserves both of its models

  // The loop.
  OptimizerOptions oo;
  oo.learning_rate = args.learning_rate;
  oo.weight_decay = args.weight_decay;
  oo.hyper = {static_cast<float>(args.adam_beta1), static_cast<float>(args.adam_beta2),
              static_cast<float>(args.adam_epsilon)};
  std::unique_ptr<TrainingTask> task;
  LoopHooks loop_hooks = hooks;
  if (electra) {
    ElectraTaskOptions eo;
    eo.discriminator_loss_weight = args.discriminator_loss_weight;
    eo.max_grad_norm = args.max_grad_norm;
    eo.seed = args.seed;
    eo.eval_batch_size = args.per_device_eval_batch_size;
    auto t = std::make_unique<ElectraTask>(train_blocks, eval_blocks, masker, tok.pad_id(), max_B, max_T,
                                           model, *generator, oo, tok, eo);
    // First: the generator's gradients and loss join the step before any other hook sees it.
    loop_hooks.step_hooks.insert(loop_hooks.step_hooks.begin(), t->step_hook());
    task = std::move(t);
  } else {
    task = std::make_unique<MlmTask>(train_blocks, eval_blocks, masker, tok.pad_id(),
                                     args.per_device_train_batch_size, max_T, args.per_device_eval_batch_size,
                                     &reserved);
  }
  TrainingLoop loop(args, args.to_json(), *task, model, tok, oo, ck, loop_hooks);
  const LoopResult r = loop.run();

  PretrainResult result;
  result.output_dir = args.output_dir;
  result.train_blocks = static_cast<int64_t>(train_blocks.size());
  result.eval_blocks = static_cast<int64_t>(eval_blocks.size());
  result.global_step = r.global_step;
  result.best_checkpoint = r.best_checkpoint;
  if (r.initial_eval) result.initial_eval = mlm_result(*r.initial_eval);
  if (r.final_eval) {
    result.final_eval = mlm_result(*r.final_eval);
    log_message("held-out: loss " + fmt("%.4f", result.final_eval.loss) + ", perplexity " +
                fmt("%.2f", result.final_eval.perplexity) +
                (result.final_eval.electra
                     ? ", discriminator loss " + fmt("%.4f", result.final_eval.discriminator_loss) +
                           ", accuracy " + fmt("%.4f", result.final_eval.discriminator_accuracy)
                     : std::string()));
  }
  return result;
}

}  // namespace bertfit
