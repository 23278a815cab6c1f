#include "tools/initial_copy/copy_flags.h"

#include <fmt/format.h>
#include <unistd.h>

#include "tools/config/size.h"
#include "tools/initial_copy/source_load.h"

namespace pgbaton::tools::copy {

void CopyFlags::Register(CLI::App* sub) {
  CopyOptions& o = options;
  sub->add_option("--jobs,-j", o.jobs, "parallel connections per side")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_option("--include", o.include,
                  "copy only tables matching this glob on schema.table (repeatable)");
  sub->add_option("--exclude", o.exclude, "leave out tables matching this glob (repeatable)");
  sub->add_flag("--text", o.text,
                "COPY every table in text format (by default a table whose every column type has "
                "the same binary form on both majors, i.e. built-in types, enums and domains "
                "over them, goes in binary; the others in text)");
  sub->add_flag("--no-owner", o.no_owner, "restore the schema without ownership");
  sub->add_option("--maintenance-work-mem", o.maintenance_work_mem,
                  "memory per index build on the target")
      ->capture_default_str();
  sub->add_option("--pg-dump", o.pg_dump, "pg_dump to use (at least the source's major)")
      ->capture_default_str();
  sub->add_option("--psql", o.psql, "psql to use")->capture_default_str();
  sub->add_option("--progress", progress, "auto (bar on a terminal, else JSON lines), bar, json")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bar", "json"}));
  sub->add_option("--max-copy-rate", max_copy_rate,
                  "cap on the bytes per second all copy workers together read from the source, "
                  "e.g. 50MB or 1GiB (kB, MB, GB, TB are powers of 1024, as in postgresql.conf; "
                  "0: no cap); the decoder and the applier are never throttled");
  sub->add_option("--source-load-limit", source_load_limit,
                  "pause the copy workers while the source is loaded: active-sessions=N (more "
                  "than N client sessions active, leaving out the copy's own) and/or standby-lag=D "
                  "(a physical standby's replay_lag over D, e.g. 10s); resumes at 80% of the "
                  "limit, e.g. active-sessions=32,standby-lag=10s");
  // Hidden: for tests and benchmarks.
  sub->add_option("--chunk-bytes", o.chunk_bytes, "split tables larger than this")->group("");
  sub->add_option("--progress-interval-ms", o.progress_interval_ms)->group("");
  sub->add_option("--source-load-interval-ms", o.source_load_interval_ms)
      ->group("")
      ->check(CLI::Range(10, 600000));
  sub->add_option("--crash-at", o.crash_at)->group("");
  sub->add_option("--pause-at", o.pause_at)->group("");
  sub->add_option("--hold-at", o.hold_at)->group("");
}

Status CopyFlags::Resolve() {
  options.max_copy_rate = 0;
  if (!max_copy_rate.empty()) {
    std::string text = max_copy_rate;
    // "50MB/s" reads as "50MB": the flag is a rate whatever it says.
    if (text.size() > 2 && text.compare(text.size() - 2, 2, "/s") == 0) {
      text.resize(text.size() - 2);
    }
    std::optional<uint64_t> rate = ParseSize(text);
    if (!rate) {
      return Status::Error(
          ErrorCode::kUsage,
          fmt::format("--max-copy-rate must be a number of bytes per second like 50MB or 1GiB, "
                      "not \"{}\"",
                      max_copy_rate),
          "kB, MB, GB and TB are powers of 1024 (as in postgresql.conf), and so are KiB, MiB, "
          "GiB and TiB; a bare number is bytes; 0 means no cap");
    }
    options.max_copy_rate = *rate;
  }
  PGB_ASSIGN_OR_RETURN(options.source_load, ParseSourceLoadLimits(source_load_limit));
  return Status::Ok();
}

bool CopyFlags::ProgressJson() const {
  return progress == "json" || (progress == "auto" && isatty(STDOUT_FILENO) == 0);
}

}  // namespace pgbaton::tools::copy
