#include "tools/initial_copy/copy_flags.h"

#include <unistd.h>

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
  // Hidden: for tests and benchmarks.
  sub->add_option("--chunk-bytes", o.chunk_bytes, "split tables larger than this")->group("");
  sub->add_option("--progress-interval-ms", o.progress_interval_ms)->group("");
  sub->add_option("--crash-at", o.crash_at)->group("");
  sub->add_option("--pause-at", o.pause_at)->group("");
  sub->add_option("--hold-at", o.hold_at)->group("");
}

bool CopyFlags::ProgressJson() const {
  return progress == "json" || (progress == "auto" && isatty(STDOUT_FILENO) == 0);
}

}  // namespace pgbaton::tools::copy
