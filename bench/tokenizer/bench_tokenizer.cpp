// Tokenizer throughput in MB/s of UTF-8 input: one thread encoding line by line, then encode_batch on 1..N
// threads. Usage: bench_tokenizer MODEL_DIR TEXT_FILE [MAX_THREADS]. bench/tokenizer/run.sh runs it next
// to the oracle (HF tokenizers through npm) on the same file.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bertfit/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tokenizer MODEL_DIR TEXT_FILE [MAX_THREADS]\n");
    return 2;
  }
  const bertfit::Tokenizer tok = bertfit::Tokenizer::from_directory(argv[1]);
  std::ifstream in(argv[2], std::ios::binary);
  std::vector<std::string> lines;
  size_t bytes = 0;
  for (std::string l; std::getline(in, l);) bytes += l.size() + 1, lines.push_back(std::move(l));
  const int max_threads =
      argc > 3 ? std::atoi(argv[3]) : static_cast<int>(std::thread::hardware_concurrency());
  using clock = std::chrono::steady_clock;
  tok.encode("warm up the character tables");
  auto t0 = clock::now();
  size_t tokens = 0;
  for (const std::string& l : lines) tokens += tok.encode(l).size();
  double s = std::chrono::duration<double>(clock::now() - t0).count();
  std::printf("bertfit  %-18s encode, 1 thread:       %7.2f MB/s  (%zu lines, %.1f MB, %zu tokens, %.2f s)\n",
              tok.is_bert() ? "wordpiece" : "byte-level bpe", bytes / 1e6 / s, lines.size(), bytes / 1e6,
              tokens, s);
  for (int t = 1; t <= max_threads; t *= 2) {
    t0 = clock::now();
    const std::vector<bertfit::Encoding> out = tok.encode_batch(lines, t);
    s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("bertfit  %-18s encode_batch, %d thread%s: %7.2f MB/s  (%.2f s)\n",
                tok.is_bert() ? "wordpiece" : "byte-level bpe", t, t > 1 ? "s" : " ", bytes / 1e6 / s, s);
  }
  return 0;
}
