#include "cli/config_file.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"

namespace bertfit::cli {

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

std::string unquote(const std::string& v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
    return v.substr(1, v.size() - 2);
  return v;
}

std::string json_value(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {  // the shortest form that reads back as the same double
    const double d = v.get<double>();
    for (int precision : {15, 16, 17}) {
      std::ostringstream o;
      o.precision(precision);
      o << d;
      if (std::stod(o.str()) == d || precision == 17) return o.str();
    }
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + json_value(x, where);
    return out;
  }
  throw ConfigError(where + ": value must be a string, number, boolean or array");
}

std::vector<std::pair<std::string, std::string>> read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("--config " + path + ": cannot open");
  std::vector<std::pair<std::string, std::string>> out;
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    nlohmann::json j;
    try {
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError(path + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw ConfigError(path + ": must hold a JSON object of option -> value");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_null()) continue;
      const std::string v = json_value(it.value(), path + ": " + it.key());
      // An unset string option, or an empty list (a list option given no value).
      if ((it.value().is_string() || it.value().is_array()) && v.empty()) continue;
      out.emplace_back(it.key(), v);
    }
    return out;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';' || t[0] == '[') continue;
    const size_t eq = t.find('=');
    if (eq == std::string::npos) throw ConfigError(path + ":" + std::to_string(n) + ": expected key = value");
    const std::string key = trim(t.substr(0, eq));
    std::string value = t.substr(eq + 1);
    // An inline comment: a '#' outside quotes ends the value (TOML).
    for (size_t i = 0, quote = 0; i < value.size(); ++i) {
      if (value[i] == '"' || value[i] == '\'')
        quote = quote == 0 ? value[i] : (quote == size_t(value[i]) ? 0 : quote);
      if (value[i] == '#' && quote == 0) {
        value.resize(i);
        break;
      }
    }
    value = trim(value);
    if (!value.empty() && value.front() == '[') {
      if (value.back() != ']') throw ConfigError(path + ":" + std::to_string(n) + ": unterminated array");
      std::string joined, item;
      std::stringstream items(value.substr(1, value.size() - 2));
      while (std::getline(items, item, ','))
        if (!trim(item).empty()) joined += (joined.empty() ? "" : ",") + unquote(trim(item));
      value = joined;
    } else {
      value = unquote(value);
    }
    if (key.empty()) throw ConfigError(path + ":" + std::to_string(n) + ": empty key");
    out.emplace_back(key, value);
  }
  return out;
}

// An option's canonical name: no dashes in front, no value, '-' as '_', and the short aliases the commands
// declare (training_options.cpp, cmd_pretrain.cpp) as their long names, so that `--model X` on the command
// line wins over a config file's model_name_or_path (training_args.json has only the long names).
std::string normalise(std::string name) {
  while (!name.empty() && name[0] == '-') name.erase(0, 1);
  const size_t eq = name.find('=');
  if (eq != std::string::npos) name.resize(eq);
  for (char& c : name)
    if (c == '-') c = '_';
  static const std::map<std::string, std::string> kAliases = {
      {"model", "model_name_or_path"},
      {"tokenizer", "tokenizer_name"},
      {"batch_size", "per_device_train_batch_size"},
      {"evaluation_strategy", "eval_strategy"},  // HF's older name (training_options.cpp takes both)
  };
  const auto it = kAliases.find(name);
  return it == kAliases.end() ? name : it->second;
}

}  // namespace

std::vector<std::string> expand_config_args(const std::vector<std::string>& args) {
  std::set<std::string> given;
  for (const std::string& a : args)
    if (a.rfind("--", 0) == 0) given.insert(normalise(a));
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string file;
    if (args[i] == "--config" && i + 1 < args.size())
      file = args[++i];
    else if (args[i].rfind("--config=", 0) == 0)
      file = args[i].substr(9);
    else {
      out.push_back(args[i]);
      continue;
    }
    for (const auto& [key, value] : read_config(file)) {
      if (given.count(normalise(key))) continue;  // the command line wins
      out.push_back("--" + key + "=" + value);
    }
  }
  return out;
}

}  // namespace bertfit::cli
