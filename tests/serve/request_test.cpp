// Request decoding: TEI's shapes (a text, a pair, a batch of texts and pairs), the optional flags, and every
// defect answered with TEI's status and error type, never an exception of another kind.
#include <gtest/gtest.h>

#include "serve/request.h"

namespace bertfit::serve {
namespace {

// Decodes and returns the ApiError's status and type ("" when it decoded).
std::pair<int, std::string> refusal(const std::string& body, bool tokenize = false) {
  try {
    if (tokenize)
      decode_tokenize_request(body);
    else
      decode_predict_request(body);
  } catch (const ApiError& e) {
    return {e.status(), error_type_name(e.type())};
  }
  return {0, ""};
}

TEST(PredictRequest, TeiShapes) {
  PredictRequest r = decode_predict_request(R"({"inputs": "I like you."})");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_FALSE(r.batch);
  EXPECT_FALSE(r.inputs[0].pair);
  EXPECT_EQ(r.inputs[0].text, "I like you.");
  EXPECT_FALSE(r.truncate.has_value());
  EXPECT_FALSE(r.raw_scores);

  r = decode_predict_request(R"({"inputs": ["one text"], "truncate": true, "raw_scores": true})");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_FALSE(r.batch);
  EXPECT_EQ(r.truncate, std::optional<bool>(true));
  EXPECT_TRUE(r.raw_scores);

  // As TEI: a flat list of two strings is ONE pair.
  r = decode_predict_request(R"({"inputs": ["a question", "an answer"]})");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_FALSE(r.batch);
  EXPECT_TRUE(r.inputs[0].pair);
  EXPECT_EQ(r.inputs[0].text_pair, "an answer");

  r = decode_predict_request(R"({"inputs": [["I like you."], ["a", "b"], ["\u00e9t\u00e9 \ud83d\ude00"]],
                                 "truncate": null, "other": {"ignored": [1, 2]}})");
  ASSERT_EQ(r.inputs.size(), 3u);
  EXPECT_TRUE(r.batch);
  EXPECT_FALSE(r.inputs[0].pair);
  EXPECT_TRUE(r.inputs[1].pair);
  EXPECT_EQ(r.inputs[2].text,
            "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80");  // escapes decoded, surrogate pair joined
  EXPECT_FALSE(r.truncate.has_value());
}

TEST(PredictRequest, DefectsGetTeiStatusesAndTypes) {
  using P = std::pair<int, std::string>;
  EXPECT_EQ(refusal(""), P(400, "validation"));
  EXPECT_EQ(refusal("{\"inputs\": \"unterminated"), P(400, "validation"));
  EXPECT_EQ(refusal("{\"inputs\": \"a\"} trailing"), P(400, "validation"));
  EXPECT_EQ(refusal("{\"inputs\": \"a\xff\"}"), P(400, "validation"));    // invalid UTF-8
  EXPECT_EQ(refusal("{\"inputs\": \"\\ud800\"}"), P(400, "validation"));  // lone surrogate escape
  EXPECT_EQ(refusal("[\"inputs\"]"), P(422, "validation"));               // not an object
  EXPECT_EQ(refusal("{}"), P(422, "validation"));                         // no inputs
  EXPECT_EQ(refusal(R"({"inputs": 3})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": null})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": {"text": "a"}})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": ["a", "b", "c"]})"), P(422, "validation"));  // TEI: not a batch
  EXPECT_EQ(refusal(R"({"inputs": ["a", 1]})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": [["a"], "b"]})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": [["a", "b", "c"]]})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": [[]]})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": [[["a"]]]})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": "a", "truncate": "yes"})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": "a", "raw_scores": 1})"), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": ""})"), P(400, "empty"));
  EXPECT_EQ(refusal(R"({"inputs": []})"), P(400, "empty"));
  EXPECT_EQ(refusal(R"({"inputs": [["a"], [""]]})"), P(400, "empty"));
  EXPECT_EQ(refusal(R"({"inputs": ["a", ""]})"), P(400, "empty"));
}

TEST(PredictRequest, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = "{\"inputs\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(refusal(deep), std::make_pair(400, std::string("validation")));
  EXPECT_EQ(json_depth(deep, 32), 33);  // stops counting past the limit
  // Brackets inside strings (escaped quotes included) are text, not nesting.
  EXPECT_EQ(json_depth(R"({"inputs": "[[[[\"[[[[", "x": [1]})", 32), 2);
  EXPECT_EQ(decode_predict_request(R"({"inputs": "[[[[\"]]]]"})").inputs[0].text, "[[[[\"]]]]");
}

TEST(PredictRequest, AOneMegabyteTextDecodes) {
  const std::string text(1 << 20, 'a');
  const PredictRequest r = decode_predict_request("{\"inputs\": \"" + text + "\"}");
  EXPECT_EQ(r.inputs[0].text.size(), text.size());
}

TEST(TokenizeRequest, ShapesAndDefects) {
  TokenizeRequest r = decode_tokenize_request(R"({"inputs": "hello"})");
  EXPECT_EQ(r.inputs, std::vector<std::string>{"hello"});
  EXPECT_TRUE(r.add_special_tokens);
  r = decode_tokenize_request(R"({"inputs": ["a", "b", "c"], "add_special_tokens": false})");
  EXPECT_EQ(r.inputs.size(), 3u);
  EXPECT_FALSE(r.add_special_tokens);
  using P = std::pair<int, std::string>;
  EXPECT_EQ(refusal(R"({"inputs": [["a"]]})", true), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": "a", "add_special_tokens": "no"})", true), P(422, "validation"));
  EXPECT_EQ(refusal(R"({"inputs": []})", true), P(400, "empty"));
  EXPECT_EQ(refusal("nope", true), P(400, "validation"));
}

TEST(ErrorBody, IsTeisShapeAndValidJsonWhateverTheMessage) {
  EXPECT_EQ(error_body("batch size 40 > maximum allowed batch size 32", ErrorType::VALIDATION),
            R"({"error":"batch size 40 > maximum allowed batch size 32","error_type":"validation"})");
  // A message quoting invalid bytes still gives valid JSON (the bytes are replaced).
  EXPECT_EQ(error_body("bad \xff byte", ErrorType::EMPTY),
            "{\"error\":\"bad \xEF\xBF\xBD byte\",\"error_type\":\"empty\"}");
}

}  // namespace
}  // namespace bertfit::serve
