// The initial copy's flags, shared by `copy` and `migrate`: one definition of each flag, its help
// and its default, filled straight into CopyOptions.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "tools/initial_copy/copy_options.h"

namespace pgbaton::tools::copy {

struct CopyFlags {
  CopyOptions options;
  std::string progress = "auto";  // --progress: auto (a bar on a terminal, else JSON), bar, json

  // Adds --jobs, --include, --exclude, --text, --no-owner, --maintenance-work-mem, --pg-dump,
  // --psql, --progress, and the hidden test hooks (--chunk-bytes, --progress-interval-ms,
  // --crash-at, --pause-at, --hold-at).
  void Register(CLI::App* sub);
  // Whether progress goes out as JSON lines (--progress json, or auto without a terminal).
  bool ProgressJson() const;
};

}  // namespace pgbaton::tools::copy
