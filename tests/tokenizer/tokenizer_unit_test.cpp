// Tokenizer behaviour beyond the golden parity files: bad input (invalid UTF-8, broken vocabulary files
// named by file and line), truncation and chunking invariants, batch == sequential, save() round trips,
// and the trainers reproducing the committed vocabularies byte for byte (those vocabularies are the ones
// the oracle verified in tokenizer_parity_test). Uses only committed fixtures.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "golden_util.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bertfit {
namespace {

namespace fs = std::filesystem;
using test::fixtures;

const Tokenizer& bert() {
  static const Tokenizer t = Tokenizer::from_directory(fixtures("bert-cased"));
  return t;
}
const Tokenizer& bpe() {
  static const Tokenizer t = Tokenizer::from_directory(fixtures("bpe-trained"));
  return t;
}

std::string tmp_dir(const std::string& name) {
  const fs::path p = fs::path(BERTFIT_BINARY_DIR) / "tokenizer-unit" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}
void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
std::vector<std::string> sample_texts(size_t n) {
  std::vector<std::string> v;
  for (const std::string& line : test::read_gz_lines(fixtures("cases.jsonl.gz"))) {
    if (v.size() >= n) break;
    if (!line.empty()) v.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return v;
}

TEST(TokenizerUnicode, LossyDecodingReplacesMaximalSubparts) {
  // Unicode's "substitution of maximal subparts", as Rust's from_utf8_lossy.
  EXPECT_EQ(tok::decode_utf8_lossy("a\xF0\x9F\x98"), U"a\uFFFD");            // truncated 4-byte sequence
  EXPECT_EQ(tok::decode_utf8_lossy("\xE0\x80\x41"), U"\uFFFD\uFFFD\x41");    // E0 needs A0..BF next
  EXPECT_EQ(tok::decode_utf8_lossy("\xED\xA0\x80"), U"\uFFFD\uFFFD\uFFFD");  // a surrogate
  EXPECT_EQ(tok::decode_utf8_lossy("\xC0\xAF"), U"\uFFFD\uFFFD");            // overlong
  EXPECT_EQ(tok::decode_utf8_lossy("\xF4\x90\x80\x80"), U"\uFFFD\uFFFD\uFFFD\uFFFD");  // > U+10FFFF
  EXPECT_EQ(tok::decode_utf8_lossy("\xE2\x82\xAC\xFF"), U"\u20AC\uFFFD");
}

TEST(TokenizerBadInput, InvalidUtf8IsReplacedNotFatal) {
  // BERT's clean_text drops U+FFFD, so the broken bytes vanish; offsets count the replaced text's chars.
  const Encoding e = bert().encode("ab\xFF\xFE cd", false);
  const Encoding clean = bert().encode("ab cd", false);
  EXPECT_EQ(e.ids, clean.ids);
  ASSERT_FALSE(e.offsets.empty());
  EXPECT_EQ(e.offsets.back().second, 7u);  // "ab" + 2 x U+FFFD + " cd"
  // Byte-level BPE encodes U+FFFD's bytes EF BF BD, exactly as for the valid character.
  EXPECT_EQ(bpe().encode("x\xC3", false).ids, bpe().encode("x\xEF\xBF\xBD", false).ids);
}

TEST(TokenizerBadInput, MissingAndMalformedFilesNameFileAndLine) {
  EXPECT_NE(error_of([] { Tokenizer::from_directory("/nonexistent-dir"); }).find("/nonexistent-dir"),
            std::string::npos);
  const std::string d = tmp_dir("bad");
  write(d + "/tokenizer.json", "{\n \"model\": {\n  \"type\": \"WordPiece\",\n  \"vocab\": [1, 2\n}");
  const std::string e1 = error_of([&] { Tokenizer::from_directory(d); });
  EXPECT_NE(e1.find(d + "/tokenizer.json:5"), std::string::npos) << e1;
  write(d + "/tokenizer.json",
        R"({"model":{"type":"WordPiece","vocab":{"a":-3}},"pre_tokenizer":{"type":"BertPreTokenizer"}})");
  const std::string e2 = error_of([&] { Tokenizer::from_directory(d); });
  EXPECT_NE(e2.find("model.vocab[\"a\"]"), std::string::npos) << e2;
  write(d + "/tokenizer.json", R"({"model":{"type":"Unigram"}})");
  EXPECT_NE(error_of([&] { Tokenizer::from_directory(d); }).find("Unigram"), std::string::npos);
  fs::remove(d + "/tokenizer.json");
  write(d + "/vocab.txt", "[PAD]\nok\xFF\n[UNK]\n");
  const std::string e3 = error_of([&] { Tokenizer::from_directory(d); });
  EXPECT_NE(e3.find(d + "/vocab.txt:2"), std::string::npos) << e3;
  fs::remove(d + "/vocab.txt");
  write(d + "/vocab.json", R"({"a":0,"b":1,"ab":2,"<s>":3,"</s>":4})");
  write(d + "/merges.txt", "#version: 0.2\na b\nthree parts here\n");
  const std::string e4 = error_of([&] { Tokenizer::from_directory(d); });
  EXPECT_NE(e4.find(d + "/merges.txt:3"), std::string::npos) << e4;
  write(d + "/merges.txt", "#version: 0.2\na b\nb zz\n");
  const std::string e5 = error_of([&] { Tokenizer::from_directory(d); });
  EXPECT_NE(e5.find("merge 2 'b zz'"), std::string::npos) << e5;
  EXPECT_NE(
      error_of([] { Tokenizer::from_tokenizer_json("/nonexistent/tokenizer.json"); }).find("cannot open"),
      std::string::npos);
}

TEST(TokenizerTruncation, HeadTailKeepsBothEndsAndFitsExactly) {
  const std::string text = sample_texts(40)[0] + " " + sample_texts(40)[1] + " " + sample_texts(40)[2];
  const Encoding all = bert().encode_sequence(text);
  ASSERT_GT(all.size(), 30u);
  const int max_length = 20, room = 18;
  const Encoding ht = encode_truncated(bert(), text, max_length, Truncation::HEAD_TAIL, 5);
  ASSERT_EQ(ht.size(), static_cast<size_t>(max_length));
  EXPECT_EQ(ht.ids.front(), bert().cls_id());
  EXPECT_EQ(ht.ids.back(), bert().sep_id());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ht.ids[1 + i], all.ids[i]);
  for (int i = 0; i < room - 5; ++i) EXPECT_EQ(ht.ids[6 + i], all.ids[all.size() - (room - 5) + i]);
  const Encoding tail = encode_truncated(bert(), text, max_length, Truncation::TAIL);
  for (int i = 0; i < room; ++i) EXPECT_EQ(tail.ids[1 + i], all.ids[all.size() - room + i]);
  const Encoding head = encode_truncated(bert(), text, max_length, Truncation::HEAD);
  for (int i = 0; i < room; ++i) EXPECT_EQ(head.ids[1 + i], all.ids[i]);
  // head_length beyond the room is clamped: HEAD_TAIL becomes HEAD.
  EXPECT_EQ(encode_truncated(bert(), text, max_length, Truncation::HEAD_TAIL, 1000).ids, head.ids);
  // A short text is not cut.
  EXPECT_EQ(encode_truncated(bert(), "short", 512, Truncation::HEAD_TAIL, 128).ids,
            bert().encode("short").ids);
  EXPECT_THROW(encode_truncated(bert(), text, 1, Truncation::HEAD), ConfigError);
  EXPECT_EQ(parse_truncation("head+tail"), Truncation::HEAD_TAIL);
  EXPECT_THROW(parse_truncation("middle"), ConfigError);
}

TEST(TokenizerTruncation, ChunksCoverTheTextInOrder) {
  for (const Tokenizer* t : {&bert(), &bpe()}) {
    std::string text;
    for (const std::string& s : sample_texts(30)) text += s + "\n";
    const Encoding all = t->encode_sequence(text);
    const std::vector<Encoding> chunks = encode_chunks(*t, text, 16);
    std::vector<int32_t> joined;
    for (const Encoding& c : chunks) {
      EXPECT_LE(c.size(), 16u);
      EXPECT_EQ(c.ids.front(), t->cls_id());
      EXPECT_EQ(c.ids.back(), t->sep_id());
      joined.insert(joined.end(), c.ids.begin() + 1, c.ids.end() - 1);
    }
    EXPECT_EQ(joined, all.ids);
    EXPECT_EQ(chunks.size(), (all.size() + 13) / 14);
    EXPECT_EQ(encode_chunks(*t, text, 16, 3).size(), 3u);
    const std::vector<Encoding> empty = encode_chunks(*t, "", 16);
    ASSERT_EQ(empty.size(), 1u);
    EXPECT_EQ(empty[0].size(), 2u);
  }
}

TEST(TokenizerBatch, ThreadsGiveTheSequentialResult) {
  const std::vector<std::string> texts = sample_texts(600);
  for (const Tokenizer* t : {&bert(), &bpe()}) {
    const std::vector<Encoding> par = t->encode_batch(texts, 2);
    ASSERT_EQ(par.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i)
      EXPECT_EQ(test::row_json(par[i]), test::row_json(t->encode(texts[i])));
  }
}

TEST(TokenizerApi, RolesAndWordIds) {
  EXPECT_EQ(bert().id_to_token(bert().cls_id()), "[CLS]");
  EXPECT_EQ(bert().id_to_token(bert().mask_id()), "[MASK]");
  EXPECT_EQ(bert().id_to_token(bert().pad_id()), "[PAD]");
  EXPECT_EQ(bert().id_to_token(bert().unk_id()), "[UNK]");
  EXPECT_EQ(bert().vocab_size(), 4000);
  EXPECT_TRUE(bert().is_bert());
  EXPECT_FALSE(bpe().is_bert());
  EXPECT_EQ(bpe().id_to_token(bpe().mask_id()), "<mask>");
  EXPECT_EQ(bpe().token_to_id("<s>"), bpe().cls_id());
  // "[MASK]" in text is the mask token; pieces of one word share a word id; specials get -1.
  const Encoding e = bert().encode("tokenization [MASK] x");
  EXPECT_EQ(e.ids[e.size() - 3], bert().mask_id());
  const std::vector<int32_t> w = bert().word_ids(e);
  EXPECT_EQ(w.front(), -1);
  EXPECT_EQ(w.back(), -1);
  EXPECT_EQ(w[1], 0);
  EXPECT_EQ(w[e.size() - 2], w[e.size() - 3] + 1);
  Encoding p = bert().encode("a");
  p.pad_to(8, bert().pad_id(), bert().pad_token());
  EXPECT_EQ(p.size(), 8u);
  EXPECT_EQ(p.attention_mask[7], 0);
  EXPECT_EQ(p.ids[7], bert().pad_id());
}

TEST(TokenizerSave, RoundTripGivesTheSameTokens) {
  const std::vector<std::string> texts = sample_texts(800);
  for (const auto& [name, t] : {std::pair<std::string, const Tokenizer*>{"bert", &bert()}, {"bpe", &bpe()}}) {
    const std::string d = tmp_dir("save-" + name);
    t->save(d);
    const Tokenizer from_json = Tokenizer::from_tokenizer_json(d + "/tokenizer.json");
    fs::remove(d + "/tokenizer.json");
    const Tokenizer from_slow = Tokenizer::from_directory(d);
    for (const std::string& s : texts) {
      const std::string want = test::row_json(t->encode(s));
      ASSERT_EQ(test::row_json(from_json.encode(s)), want) << name << ": " << s;
      ASSERT_EQ(test::row_json(from_slow.encode(s)), want) << name << ": " << s;
    }
    EXPECT_EQ(from_slow.mask_id(), t->mask_id());
    EXPECT_EQ(from_slow.vocab_size(), t->vocab_size());
  }
}

// The committed vocabularies were made by these trainers (tools/tokenizer/make_fixtures.sh) and verified
// against the oracle in tokenizer_parity_test; retraining must reproduce them byte for byte.
TEST(TokenizerTrain, TrainersReproduceTheCommittedVocabularies) {
  const std::string d = tmp_dir("train");
  auto corpus = [&](const std::string& name) {
    std::string text;
    for (const std::string& l : test::read_gz_lines(fixtures(name))) text += l + "\n";
    const std::string path = d + "/" + name + ".txt";
    write(path, text);
    return path;
  };
  const std::string cased = corpus("corpus-cased.txt.gz"), chinese = corpus("corpus-chinese.txt.gz");
  WordPieceTrainerOptions wc;
  wc.vocab_size = 4000, wc.lowercase = false;
  train_wordpiece({cased}, wc, d + "/bert-cased");
  EXPECT_EQ(read(d + "/bert-cased/vocab.txt"), read(fixtures("bert-cased/vocab.txt")));
  WordPieceTrainerOptions wz;
  wz.vocab_size = 6000, wz.limit_alphabet = 2500;
  train_wordpiece({chinese}, wz, d + "/bert-chinese");
  EXPECT_EQ(read(d + "/bert-chinese/vocab.txt"), read(fixtures("bert-chinese/vocab.txt")));
  BpeTrainerOptions b;
  b.vocab_size = 3000;
  train_bpe({cased}, b, d + "/bpe");
  EXPECT_EQ(read(d + "/bpe/merges.txt"), read(fixtures("bpe-trained/merges.txt")));
  EXPECT_EQ(read(d + "/bpe/vocab.json"), read(fixtures("bpe-trained/vocab.json")));
  EXPECT_THROW(train_wordpiece({d + "/missing.txt"}, wc, d + "/x"), FormatError);
  WordPieceTrainerOptions tiny;
  tiny.vocab_size = 3;
  EXPECT_THROW(train_wordpiece({cased}, tiny, d + "/x"), ConfigError);
}

}  // namespace
}  // namespace bertfit
