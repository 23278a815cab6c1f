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
  std::string max_copy_rate;      // --max-copy-rate, parsed by Resolve
  std::string source_load_limit;  // --source-load-limit, parsed by Resolve

  // Adds --jobs, --include, --exclude, --text, --no-owner, --maintenance-work-mem, --pg-dump,
  // --psql, --progress, --max-copy-rate, --source-load-limit, and the hidden test hooks
  // (--chunk-bytes, --progress-interval-ms, --source-load-interval-ms, --crash-at, --pause-at,
  // --hold-at).
  void Register(CLI::App* sub);
  // Parses the flags given as text into `options` (max_copy_rate, source_load). Call it before
  // anything is opened. Errors: kUsage naming the flag.
  Status Resolve();
  // Whether progress goes out as JSON lines (--progress json, or auto without a terminal).
  bool ProgressJson() const;
};

}  // namespace pgbaton::tools::copy
