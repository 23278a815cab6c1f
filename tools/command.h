// The command-line verbs. Each verb is a Command in its own folder under tools/; main.cc lists
// them. Only tools/ reads argv, the environment and files; libraries get plain option structs.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <utility>

#include "common/status.h"

namespace pgbaton::tools {

// Options every verb shares; parsed by main before the verb runs.
struct GlobalOptions {
  std::string name = "pgbaton";  // names the slot, publication, origin and queue
  std::string log_level = "info";
  std::string log_format = "human";
};

// A verb: its subcommand's name and one-line description, its flags and what it runs. A verb
// derives from Command, declares its flags in AddFlags and does its work in Run.
class Command {
 public:
  // `verb` and `description` name the subcommand; `global` must outlive the command (main parses
  // it before Run). Verbs inherit this constructor; their Make*Command factories name them.
  Command(GlobalOptions* global, std::string verb, std::string description)
      : global_(global), verb_(std::move(verb)), description_(std::move(description)) {}
  virtual ~Command() = default;
  // Adds the verb's subcommand to `app`, then its flags (AddFlags); returns the subcommand.
  CLI::App* Register(CLI::App* app) {
    CLI::App* sub = app->add_subcommand(verb_, description_);
    AddFlags(sub);
    return sub;
  }
  // Runs the verb after its flags were parsed. The returned Status is printed once by main and
  // becomes the exit code.
  virtual Status Run() = 0;

 protected:
  // Adds the verb's flags (and subcommands, if it has any) to `sub`.
  virtual void AddFlags(CLI::App* sub) = 0;
  const GlobalOptions& global() const { return *global_; }

 private:
  GlobalOptions* global_;
  std::string verb_;
  std::string description_;
};

}  // namespace pgbaton::tools
