// The command-line verbs. Each verb is a Command in its own folder under tools/; main.cc lists
// them. Only tools/ reads argv, the environment and files; libraries get plain option structs.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/status.h"

namespace pgbaton::tools {

// Options every verb shares; parsed by main before the verb runs.
struct GlobalOptions {
  std::string name = "pgbaton";  // names the slot, publication, origin and queue
  std::string log_level = "info";
  std::string log_format = "human";
};

class Command {
 public:
  virtual ~Command() = default;
  // Adds the verb's subcommand and flags to `app`; returns the subcommand.
  virtual CLI::App* Register(CLI::App* app) = 0;
  // Runs the verb after its flags were parsed. The returned Status is printed once by main and
  // becomes the exit code.
  virtual Status Run() = 0;
};

}  // namespace pgbaton::tools
