#include "tools/config/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/conninfo.h"

namespace pgbaton::tools {

namespace {

std::string NormaliseKey(std::string_view key) {
  std::string out(key);
  for (auto& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

Status ConfigError(const std::string& path, const std::string& what, std::string hint = {}) {
  return Status::Error(ErrorCode::kUsage, fmt::format("config file \"{}\": {}", path, what),
                       std::move(hint));
}

Result<std::string> ScalarText(const toml::node& v, const std::string& path,
                               const std::string& key) {
  if (auto s = v.value_exact<std::string>()) return *s;
  if (auto i = v.value_exact<int64_t>()) return std::to_string(*i);
  if (auto d = v.value_exact<double>()) return fmt::format("{}", *d);
  if (auto b = v.value_exact<bool>()) return std::string(*b ? "true" : "false");
  return ConfigError(path, fmt::format("key \"{}\": expected a string, number or boolean", key));
}

Status Collect(const toml::table& table, const std::string& section, const std::string& path,
               ConfigFile* out) {
  auto& values = out->sections[section];
  for (auto&& [k, v] : table) {
    std::string key(k.str());
    if (const toml::table* sub = v.as_table()) {
      PGB_RETURN_IF_ERROR(Collect(*sub, section.empty() ? key : section + "." + key, path, out));
      continue;
    }
    std::vector<std::string> items;
    if (const toml::array* arr = v.as_array()) {
      for (const toml::node& e : *arr) {
        if (const toml::table* t = e.as_table()) {
          // An array of tables ([[cutover.pgbouncer]]): each table as one JSON object, which the
          // option it names parses.
          std::ostringstream json;
          json << toml::json_formatter{*t, toml::format_flags::none};
          items.push_back(json.str());
          continue;
        }
        PGB_ASSIGN_OR_RETURN(std::string s, ScalarText(e, path, key));
        items.push_back(std::move(s));
      }
    } else {
      PGB_ASSIGN_OR_RETURN(std::string s, ScalarText(v, path, key));
      items.push_back(std::move(s));
    }
    values[NormaliseKey(key)] = std::move(items);
  }
  return Status::Ok();
}

bool Skip(CLI::App* app, const CLI::Option* opt) {
  return opt->get_lnames().empty() || opt == app->get_help_ptr() ||
         opt == app->get_help_all_ptr() || opt == app->get_version_ptr() ||
         opt->get_lnames()[0] == "config";
}

std::vector<CLI::App*> AllSubcommands(CLI::App* app) {
  return app->get_subcommands([](CLI::App*) { return true; });
}

// Section path -> app, for the app and every nested subcommand.
void MapSections(CLI::App* app, const std::string& path, std::map<std::string, CLI::App*>* out) {
  (*out)[path] = app;
  for (CLI::App* sub : AllSubcommands(app)) {
    MapSections(sub, path.empty() ? sub->get_name() : path + "." + sub->get_name(), out);
  }
}

bool HasOption(CLI::App* app, const std::string& key, bool recursive) {
  for (const CLI::Option* opt : app->get_options()) {
    if (Skip(app, opt)) continue;
    for (const auto& l : opt->get_lnames()) {
      if (NormaliseKey(l) == key) return true;
    }
  }
  if (recursive) {
    for (CLI::App* sub : AllSubcommands(app)) {
      if (HasOption(sub, key, true)) return true;
    }
  }
  return false;
}

// The file's value for `opt` of the command at `path`: that section, then its parents.
const std::vector<std::string>* Lookup(const ConfigFile& file, std::string path,
                                       const CLI::Option* opt) {
  for (;;) {
    auto s = file.sections.find(path);
    if (s != file.sections.end()) {
      for (const auto& l : opt->get_lnames()) {
        auto v = s->second.find(NormaliseKey(l));
        if (v != s->second.end()) return &v->second;
      }
    }
    if (path.empty()) return nullptr;
    size_t dot = path.rfind('.');
    path = dot == std::string::npos ? "" : path.substr(0, dot);
  }
}

void NameEnvironment(CLI::App* app) {
  for (CLI::Option* opt : app->get_options()) {
    if (Skip(app, opt) || !opt->get_envname().empty()) continue;
    opt->envname(EnvNameFor(opt->get_lnames()[0]));
  }
  for (CLI::App* sub : AllSubcommands(app)) NameEnvironment(sub);
}

void LiftRequired(CLI::App* app, const std::string& path, const ConfigFile& file) {
  for (CLI::Option* opt : app->get_options()) {
    if (Skip(app, opt) || !opt->get_required()) continue;
    if (Lookup(file, path, opt) != nullptr) opt->required(false);
  }
  for (CLI::App* sub : AllSubcommands(app)) {
    LiftRequired(sub, path.empty() ? sub->get_name() : path + "." + sub->get_name(), file);
  }
}

Status ApplyTo(CLI::App* app, const std::string& path, const ConfigFile& file) {
  for (CLI::Option* opt : app->get_options()) {
    if (Skip(app, opt) || opt->count() > 0) continue;
    const std::vector<std::string>* values = Lookup(file, path, opt);
    if (values == nullptr) continue;
    try {
      for (const auto& v : *values) opt->add_result(v);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return ConfigError(file.path,
                         fmt::format("key \"{}\"{}: {}", opt->get_lnames()[0],
                                     path.empty() ? "" : " (for " + path + ")", e.what()));
    }
  }
  for (CLI::App* sub : app->get_subcommands()) {  // the parsed ones only
    PGB_RETURN_IF_ERROR(
        ApplyTo(sub, path.empty() ? sub->get_name() : path + "." + sub->get_name(), file));
  }
  return Status::Ok();
}

}  // namespace

std::string EnvNameFor(const std::string& long_name) {
  std::string out = "PGBATON_";
  for (char c : long_name) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

namespace {

// The options of `app` and of every subcommand below it.
void CollectOptions(const CLI::App& app, std::vector<const CLI::Option*>* out) {
  for (const CLI::Option* o : app.get_options()) out->push_back(o);
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    CollectOptions(*sub, out);
  }
}

}  // namespace

Status EnvironmentParseError(const CLI::App& app, const CLI::ParseError& error, int argc,
                             const char* const* argv) {
  std::string what = error.what();
  std::set<std::string> given;  // long flags on the command line: they beat the environment
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.rfind("--", 0) == 0) given.insert(a.substr(0, a.find('=')));
  }
  std::vector<const CLI::Option*> options;
  CollectOptions(app, &options);
  for (const CLI::Option* o : options) {
    const std::string& env = o->get_envname();
    if (env.empty()) continue;
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string flag = o->get_name();
    if (flag.rfind("--", 0) != 0 || given.count(flag) != 0) continue;
    size_t at = what.find(flag);
    // The flag itself, not the start of a longer one (--jobs in --jobs-max).
    if (at == std::string::npos ||
        (at + flag.size() < what.size() &&
         (std::isalnum(static_cast<unsigned char>(what[at + flag.size()])) ||
          what[at + flag.size()] == '-'))) {
      continue;
    }
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("environment variable {}=\"{}\" is not a valid value for {}: {}", env,
                    ScrubSecrets(value), flag, what),
        fmt::format("fix or unset {} (a {} flag on the command line wins over it)", env, flag));
  }
  return Status::Ok();
}

Result<ConfigFile> ParseConfigText(const std::string& text, const std::string& path) {
  ConfigFile file;
  file.path = path;
  try {
    toml::table table = toml::parse(text, path);
    PGB_RETURN_IF_ERROR(Collect(table, "", path, &file));
  } catch (const toml::parse_error& e) {
    return ConfigError(path,
                       fmt::format("line {}, column {}: {}", e.source().begin.line,
                                   e.source().begin.column, e.description()),
                       "the config file is TOML: key = \"value\" lines, [verb] sections");
  }
  return file;
}

Result<ConfigFile> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::Error(ErrorCode::kIo, fmt::format("config file \"{}\": cannot be read", path),
                         "check --config or PGBATON_CONFIG");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigText(ss.str(), path);
}

Status ConfigLayer::Prepare(CLI::App* app, int argc, const char* const* argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--config" && i + 1 < argc) path = argv[i + 1];
    if (a.substr(0, 9) == "--config=") path = std::string(a.substr(9));
  }
  if (path.empty()) {
    const char* env = std::getenv("PGBATON_CONFIG");
    if (env != nullptr) path = env;
  }
  if (path.empty()) return Prepare(app, nullptr);
  Result<ConfigFile> file = LoadConfigFile(path);
  if (!file.ok()) {
    // Still register --config and the environment names, so that parsing (and --help) works.
    (void)Prepare(app, nullptr);
    return file.status();
  }
  return Prepare(app, &file.value());
}

Status ConfigLayer::Prepare(CLI::App* app, const ConfigFile* file) {
  app->add_option("--config", config_flag_,
                  "TOML config file; flags beat PGBATON_* variables, which beat the file")
      ->envname("PGBATON_CONFIG");
  NameEnvironment(app);
  if (file == nullptr) return Status::Ok();
  file_ = *file;
  have_file_ = true;

  std::map<std::string, CLI::App*> apps;
  MapSections(app, "", &apps);
  for (const auto& [section, values] : file_.sections) {
    auto it = apps.find(section);
    if (it == apps.end()) {
      return ConfigError(file_.path, fmt::format("unknown section [{}]", section),
                         "sections are command names, e.g. [verify]");
    }
    for (const auto& [key, unused] : values) {
      // Top-level keys may name an option of any command; a section's, one of that command or
      // of a command above it.
      bool known = section.empty() ? HasOption(app, key, true) : false;
      for (std::string p = section; !known;) {
        known = HasOption(apps[p], key, false);
        if (p.empty()) break;
        size_t dot = p.rfind('.');
        p = dot == std::string::npos ? "" : p.substr(0, dot);
      }
      if (!known) {
        return ConfigError(
            file_.path,
            fmt::format("unknown key \"{}\"{}", key,
                        section.empty() ? "" : fmt::format(" in [{}]", section)),
            fmt::format("keys are long option names without the dashes, e.g. log-level = "
                        "\"debug\"; see pgbaton {}--help",
                        section.empty() ? "" : section + " "));
      }
    }
  }
  LiftRequired(app, "", file_);
  return Status::Ok();
}

Status ConfigLayer::Apply(CLI::App* app) {
  if (!have_file_) return Status::Ok();
  return ApplyTo(app, "", file_);
}

}  // namespace pgbaton::tools
