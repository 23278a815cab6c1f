// Where option values come from, in this order (first wins): command-line flags, PGBATON_*
// environment variables, the TOML config file (--config FILE or PGBATON_CONFIG), built-in
// defaults. Works on any CLI11 app: each verb declares its flags once and gets the environment
// variable and the config key for free (docs/reference/config.md).
//
// Why not CLI11's own config support: it applies the file before the environment (file beats
// environment, the opposite of the documented order) and its parser is only TOML-like.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace pgbaton::tools {

// "PGBATON_CHUNK_ROWS" for --chunk-rows: the prefix, upper case, '-' turned into '_'.
std::string EnvNameFor(const std::string& long_name);

// Parsed config file: values by section path ("" for the top level, "verify", "queue.inspect")
// and key (long option name, '_' normalised to '-'). Each value is one or more strings (arrays);
// an array of tables ([[cutover.pgbouncer]]) gives one JSON object per table, which the option
// named by its key parses.
struct ConfigFile {
  std::string path;
  std::map<std::string, std::map<std::string, std::vector<std::string>>> sections;
};

// Parses a TOML file. Errors: kUsage with the file, line and column of a syntax error, or for a
// value that is not a string, number, boolean or array of those; kIo when it cannot be read.
Result<ConfigFile> LoadConfigFile(const std::string& path);

// When `error` (CLI11's, from parsing `argv`) is about a value that came from a PGBATON_*
// environment variable rather than the command line, a kUsage Status naming the variable, its
// (masked) value and the flag, with a hint; OK when the error is about the command line itself.
Status EnvironmentParseError(const CLI::App& app, const CLI::ParseError& error, int argc,
                             const char* const* argv);
// Same from text (for tests); `path` only names it in errors.
Result<ConfigFile> ParseConfigText(const std::string& text, const std::string& path);

class ConfigLayer {
 public:
  // Call once every verb is registered, before app->parse(): adds the global --config option,
  // gives every long option without an environment variable PGBATON_<NAME>, loads the file named
  // by --config in `argv` (or by PGBATON_CONFIG), checks that each of its keys names an option of
  // that section's command (or of any command, at the top level), and lifts required() from
  // options the file provides. Errors: those of LoadConfigFile; kUsage for an unknown key or
  // section (naming it).
  Status Prepare(CLI::App* app, int argc, const char* const* argv);

  // Same with an already parsed file (for tests); `file` may be null for no file.
  Status Prepare(CLI::App* app, const ConfigFile* file);

  // Call after app->parse(): gives each option of the app and of the parsed verbs that neither a
  // flag nor the environment set the file's value (the verb's section first, then its parents',
  // then the top level), through the option's own conversion and checks. Errors: kUsage naming
  // the file and key when a value does not convert or fails a check.
  Status Apply(CLI::App* app);

  const std::string& path() const { return file_.path; }

 private:
  std::string config_flag_;  // bound to --config
  ConfigFile file_;
  bool have_file_ = false;
};

}  // namespace pgbaton::tools
