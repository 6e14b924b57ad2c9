// Masked-LM masking (train/mlm_masking): the statistics of HF's DataCollatorForLanguageModeling on a large
// sample, specials and padding never touched, determinism in (seed, epoch, example), and whole-word masking
// that masks whole words only (WordPiece "##", CJK characters, byte-level "Ġ").
#include "train/mlm_masking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "bertfit/error.h"
#include "core/rng.h"

namespace bertfit {
namespace {

constexpr int32_t kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4;

// A WordPiece vocabulary: the five specials, then words "w5".."wK" and continuation pieces "##c..".
std::vector<std::string> wordpiece_vocab(int size) {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = static_cast<int>(v.size()); i < size; ++i)
    v.push_back(i % 3 == 0 ? "##c" + std::to_string(i) : "w" + std::to_string(i));
  return v;
}

MlmMasker wordpiece_masker(int vocab, MaskingOptions o = {}) {
  return MlmMasker(wordpiece_vocab(vocab), true, {kPad, kCls, kSep, kMask}, kMask, o);
}

// [CLS] t.. [SEP] [PAD].. with random non-special ids.
struct Seq {
  std::vector<int32_t> ids;
  std::vector<uint8_t> attention;
};
Seq random_sequence(Rng& rng, int vocab, int length, int padding) {
  Seq s;
  s.ids.push_back(kCls);
  for (int i = 0; i < length; ++i) s.ids.push_back(static_cast<int32_t>(5 + rng.below(vocab - 5)));
  s.ids.push_back(kSep);
  s.attention.assign(s.ids.size(), 1);
  for (int i = 0; i < padding; ++i) s.ids.push_back(kPad), s.attention.push_back(0);
  return s;
}

TEST(MlmMasking, SharesMatchTheCollatorWithinBinomialTolerance) {
  const int V = 2000;
  MlmMasker m = wordpiece_masker(V);
  Rng rng(7);
  int64_t candidates = 0, chosen = 0, as_mask = 0, as_other = 0, as_same = 0;
  for (uint64_t ex = 0; ex < 2000; ++ex) {
    Seq s = random_sequence(rng, V, 100 + static_cast<int>(ex % 50), static_cast<int>(ex % 7));
    std::vector<int32_t> out(s.ids.size()), labels(s.ids.size());
    const int64_t k =
        m.mask(s.ids.data(), s.ids.size(), s.attention.data(), out.data(), labels.data(), 0, ex);
    int64_t labelled = 0;
    for (size_t i = 0; i < s.ids.size(); ++i) {
      const bool special = s.ids[i] < 5 || !s.attention[i];
      candidates += !special;
      if (labels[i] == kMlmIgnore) {
        EXPECT_EQ(out[i], s.ids[i]);  // unchosen tokens are never changed
        continue;
      }
      ASSERT_FALSE(special) << "a special or padding position was masked";
      EXPECT_EQ(labels[i], s.ids[i]);  // the label is the original token
      ++labelled;
      if (out[i] == kMask)
        ++as_mask;
      else if (out[i] == s.ids[i])
        ++as_same;
      else
        ++as_other;
    }
    EXPECT_EQ(k, labelled);
    chosen += labelled;
  }
  ASSERT_GT(candidates, 240000);
  // Each share is a binomial proportion; the tolerance is 5 standard errors sqrt(p (1 - p) / n), so a
  // correct implementation fails with probability below 1e-6 per check, while a wrong rate (e.g. 0.12 or
  // 0.2 masked, a 70/20/10 split) is many standard errors away.
  auto within = [](double count, double n, double p) {
    const double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(count / n, p, 5 * sigma) << "n " << n;
  };
  within(static_cast<double>(chosen), static_cast<double>(candidates), 0.15);
  within(static_cast<double>(as_mask), static_cast<double>(chosen), 0.8);
  // A random draw lands on the token itself with probability 1/V: those look "kept".
  within(static_cast<double>(as_other), static_cast<double>(chosen), 0.1 * (1 - 1.0 / V));
  within(static_cast<double>(as_same), static_cast<double>(chosen), 0.1 + 0.1 / V);
}

TEST(MlmMasking, RandomReplacementsCoverTheVocabularyUniformly) {
  const int V = 50;
  MaskingOptions o;
  o.mlm_probability = 1.0;
  o.mask_replace_prob = 0.0;
  o.random_replace_prob = 1.0;  // every token becomes a random id
  MlmMasker m = wordpiece_masker(V, o);
  std::vector<int64_t> counts(V, 0);
  std::vector<int32_t> ids(200, 10), out(200), labels(200);
  const int rounds = 500;
  for (int r = 0; r < rounds; ++r) {
    m.mask(ids.data(), ids.size(), nullptr, out.data(), labels.data(), r, 0);
    for (int32_t x : out) ++counts[x];
  }
  // Uniform over all V ids (HF draws from len(tokenizer), specials included): each count is
  // Binomial(n, 1/V); 5 standard errors.
  const double n = 200.0 * rounds, p = 1.0 / V;
  for (int i = 0; i < V; ++i) EXPECT_NEAR(counts[i] / n, p, 5 * std::sqrt(p * (1 - p) / n)) << "id " << i;
}

TEST(MlmMasking, PureFunctionOfSeedEpochAndExample) {
  MlmMasker m = wordpiece_masker(500);
  Rng rng(3);
  Seq s = random_sequence(rng, 500, 200, 0);
  auto run = [&](const MlmMasker& mk, uint64_t epoch, uint64_t ex) {
    std::vector<int32_t> out(s.ids.size()), labels(s.ids.size());
    mk.mask(s.ids.data(), s.ids.size(), nullptr, out.data(), labels.data(), epoch, ex);
    out.insert(out.end(), labels.begin(), labels.end());
    return out;
  };
  EXPECT_EQ(run(m, 2, 9), run(m, 2, 9));
  EXPECT_NE(run(m, 2, 9), run(m, 3, 9));  // fresh masks every epoch
  EXPECT_NE(run(m, 2, 9), run(m, 2, 10));
  MaskingOptions other;
  other.seed = 43;
  EXPECT_NE(run(m, 2, 9), run(wordpiece_masker(500, other), 2, 9));
  // In place (ids_out == ids_in) gives the same result.
  std::vector<int32_t> inplace = s.ids, labels(s.ids.size());
  m.mask(inplace.data(), inplace.size(), nullptr, inplace.data(), labels.data(), 2, 9);
  std::vector<int32_t> expected = run(m, 2, 9);
  EXPECT_TRUE(std::equal(inplace.begin(), inplace.end(), expected.begin()));
}

TEST(MlmMasking, SpecialsAndPaddingNeverMaskedEvenAtProbabilityOne) {
  MaskingOptions o;
  o.mlm_probability = 1.0;
  for (bool wwm : {false, true}) {
    o.whole_word = wwm;
    MlmMasker m = wordpiece_masker(100, o);
    // Padding positions hold a real token id here: the attention mask alone must protect them.
    std::vector<int32_t> ids = {kCls, 10, 11, kSep, 12, 13, kSep, 14, 15, kUnk};
    std::vector<uint8_t> att = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
    std::vector<int32_t> out(ids.size()), labels(ids.size());
    m.mask(ids.data(), ids.size(), att.data(), out.data(), labels.data(), 0, 0);
    for (size_t i = 0; i < ids.size(); ++i) {
      const bool protect = ids[i] == kCls || ids[i] == kSep || !att[i];
      EXPECT_EQ(labels[i] == kMlmIgnore, protect) << "position " << i << " wwm " << wwm;
      if (protect) {
        EXPECT_EQ(out[i], ids[i]);
      }
    }
  }
}

TEST(MlmMasking, WholeWordMaskingMasksWholeWordsOnly) {
  MaskingOptions o;
  o.whole_word = true;
  const int V = 300;
  MlmMasker m = wordpiece_masker(V, o);
  const auto vocab = wordpiece_vocab(V);
  Rng rng(11);
  int64_t candidates = 0, chosen = 0, partial = 0, words_chosen = 0;
  for (uint64_t ex = 0; ex < 500; ++ex) {
    Seq s = random_sequence(rng, V, 120, 3);
    std::vector<int32_t> out(s.ids.size()), labels(s.ids.size());
    m.mask(s.ids.data(), s.ids.size(), s.attention.data(), out.data(), labels.data(), 1, ex);
    const auto w = m.words(s.ids.data(), s.ids.size(), s.attention.data());
    int64_t cand = 0, ch = 0;
    std::map<int32_t, std::pair<int, int>> per_word;  // word -> (tokens, labelled)
    for (size_t i = 0; i < s.ids.size(); ++i) {
      if (w[i] < 0) {
        EXPECT_EQ(labels[i], kMlmIgnore);
        continue;
      }
      // Word boundaries follow the "##" rule: a continuation piece joins the word before it.
      if (i > 0 && w[i - 1] >= 0) {
        const bool cont = vocab[s.ids[i]].rfind("##", 0) == 0;
        EXPECT_EQ(w[i] == w[i - 1], cont) << "token " << vocab[s.ids[i]];
      }
      ++cand;
      auto& pw = per_word[w[i]];
      ++pw.first;
      if (labels[i] != kMlmIgnore) ++pw.second, ++ch;
    }
    for (const auto& [word, tl] : per_word) {
      partial += tl.second != 0 && tl.second != tl.first;
      words_chosen += tl.second == tl.first;
    }
    // HF's count rule: never more than round(0.15 * candidates) tokens, at least one word.
    EXPECT_LE(ch, std::llround(0.15 * cand));
    EXPECT_GE(ch, 1);
    candidates += cand;
    chosen += ch;
  }
  EXPECT_EQ(partial, 0) << "a word was masked partly";
  EXPECT_GT(words_chosen, 500);
  // Words are 1-3 tokens here, so the greedy fill reaches the target up to a word's length: the share
  // lands within 1.5 points below 15% (measured: about 14.7%).
  EXPECT_GT(static_cast<double>(chosen) / candidates, 0.135);
}

TEST(MlmMasking, CjkCharactersAreWordsOfTheirOwn) {
  // A WordPiece vocabulary where a CJK character is followed by a continuation piece (a hand-made
  // vocabulary can hold "##x" after a CJK token; BERT's pre-tokenizer isolates CJK, so each is a word).
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                "中",    "文",    "##ab",  "ab",    "##中"};
  MlmMasker m(v, true, {kPad, kCls, kSep, kMask}, kMask, {});
  std::vector<int32_t> ids = {kCls, 5, 6, 7, 8, 7, 9, 5, kSep};
  const auto w = m.words(ids.data(), ids.size(), nullptr);
  // [CLS] 中 | 文 | ##ab (after a CJK char: own word) | ab ##ab | ##中 | 中 [SEP]
  EXPECT_EQ(w, (std::vector<int32_t>{-1, 0, 1, 2, 3, 3, 4, 5, -1}));
}

TEST(MlmMasking, ByteLevelWordsStartAtTheSpaceSymbol) {
  // Byte-level BPE: "Ġ" (U+0120) marks a token that starts with a space. "ä¸Ń" is the byte-level spelling
  // of U+4E2D (中: E4 B8 AD), a CJK character, its own word even without a space.
  std::vector<std::string> v = {"<s>",         "<pad>", "</s>", "<unk>",       "<mask>",
                                "\xC4\xA0the", "cat",   "s",    "\xC4\xA0sat", "\xC3\xA4\xC2\xB8\xC5\x83"};
  MlmMasker m(v, false, {0, 1, 2}, 4, {});
  std::vector<int32_t> ids = {0, 6, 7, 5, 6, 8, 9, 9, 7, 2};
  const auto w = m.words(ids.data(), ids.size(), nullptr);
  // <s> cat s | Ġthe cat | Ġsat | 中 | 中 | s (after CJK: new word) </s>
  EXPECT_EQ(w, (std::vector<int32_t>{-1, 0, 0, 1, 1, 2, 3, 4, 5, -1}));
}

TEST(MlmMasking, RealTokenizerWordsAndSpecials) {
  // A WordPiece tokenizer from a vocab.txt: masking reads its specials and "##" pieces.
  const std::string dir = std::string(BERTFIT_BINARY_DIR) + "/mlm_masking_test_tok";
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/vocab.txt");
    for (const char* t :
         {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##believ", "##able", "story", "中", "国", "."})
      f << t << "\n";
  }
  const Tokenizer tok = Tokenizer::from_directory(dir);
  const Encoding e = tok.encode("Unbelievable story. 中国");
  MaskingOptions o;
  o.whole_word = true;
  MlmMasker m(tok, o);
  EXPECT_TRUE(m.is_special(tok.cls_id()));
  EXPECT_TRUE(m.is_special(tok.mask_id()));
  EXPECT_FALSE(m.is_special(tok.unk_id()));  // as HF's run_mlm: [UNK] may be masked
  const auto w = m.words(e.ids.data(), e.size(), nullptr);
  // [CLS] un ##believ ##able story . 中 国 [SEP]: the masker's words agree with the tokenizer's.
  EXPECT_EQ(w, (std::vector<int32_t>{-1, 0, 0, 0, 1, 2, 3, 4, -1}));
  EXPECT_EQ(w, tok.word_ids(e));
}

TEST(MlmMasking, BadOptionsAreConfigErrors) {
  MaskingOptions o;
  o.mlm_probability = 1.5;
  EXPECT_THROW(wordpiece_masker(100, o), ConfigError);
  o.mlm_probability = 0.15;
  o.mask_replace_prob = 0.95;
  o.random_replace_prob = 0.1;
  EXPECT_THROW(wordpiece_masker(100, o), ConfigError);
  EXPECT_THROW(MlmMasker(wordpiece_vocab(10), true, {}, 42, {}), ConfigError);
}

}  // namespace
}  // namespace bertfit
