#include "cli/suggest.h"

#include <algorithm>

namespace bertfit::cli {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

namespace {

// The candidate closest to `word`, when close enough to be a typo (at most a third of its letters, and 3).
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::min<size_t>(3, std::max<size_t>(1, word.size() / 3)) + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

}  // namespace

std::string parse_error_hint(const CLI::App& app, const std::vector<std::string>& typed) {
  const std::vector<CLI::App*> used = app.get_subcommands();
  if (used.empty()) {  // no command recognised: the first word was meant as one
    if (typed.empty() || typed[0].empty() || typed[0][0] == '-') return "";
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      names.push_back(sub->get_name());
    const std::string near = closest(typed[0], names);
    return "unknown command '" + typed[0] + "'" + (near.empty() ? "" : " (did you mean " + near + "?)") +
           "; bertfit --help lists the commands";
  }
  const CLI::App* sub = used.back();
  std::vector<std::string> options;
  for (const CLI::Option* o : sub->get_options())
    for (const std::string& n : o->get_lnames()) options.push_back("--" + n);
  std::string hint;
  for (const std::string& arg : sub->remaining()) {
    if (arg.rfind("--", 0) != 0) continue;
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(options.begin(), options.end(), name) != options.end()) continue;
    const bool from_config = std::none_of(typed.begin(), typed.end(), [&](const std::string& t) {
      return t == arg || t.rfind(name + "=", 0) == 0;
    });
    const std::string near = closest(name, options);
    hint += std::string(hint.empty() ? "" : "\n") + "unknown option " + name +
            (from_config ? " (a key of the --config file)" : "") +
            (near.empty() ? "" : ": did you mean " + near + "?");
  }
  if (!hint.empty()) hint += "\nbertfit " + sub->get_name() + " --help lists its options";
  return hint;
}

}  // namespace bertfit::cli
