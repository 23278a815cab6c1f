// The flags of the verbs that move data (stream, apply, run, copy, migrate): --source/--target,
// the work queue's and --metrics-addr, registered in one call, and what each of those verbs does
// with them first: check the queue flags, resolve the conninfos, and name both in the identity
// check (tools/common/identity.h) and in the metrics sampler's options.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/metrics_sampler.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"
#include "tools/metrics/metrics_server.h"

namespace pgbaton::tools {

// What a data verb starts from, resolved from MigrationFlags.
struct MigrationStart {
  std::string source;         // the source's conninfo; "" when the verb takes no --source
  std::string target;         // the target's conninfo; "" when the verb takes no --target
  queue::QueueOptions queue;  // the queue flags' options for the migration's name
  // QueueCheck(queue, verb) naming `source` and `target`; the verb sets bind and the rest.
  MigrationCheck check;
  // Cluster mode: the database of this member of the cluster ("" otherwise), the `database`
  // label of its metrics.
  std::string database;

  // The metrics sampler's options for `q`: the migration's name, `source`, `target` and `q`
  // (record_samples left to the verb).
  MetricsSamplerOptions SamplerOptions(queue::WorkQueue* q) const;
  // The metrics series of this database (metrics::CatalogFor(database)).
  const metrics::Catalog* Series() const { return &metrics::CatalogFor(database); }
};

struct MigrationFlags {
  ConnectionFlags conn;
  QueueFlags queue;
  MetricsOptions metrics;

  // Adds the connection flags `source` and `target` ask for, the queue flags `use` names and
  // --metrics-addr / --metrics-allow-remote to `sub`.
  void Register(CLI::App* sub, Need source, Need target, QueueFlagsUse use = {});

  // The queue flags' Check for `verb`, then the conninfo of each side Register took, the queue's
  // options and the check for migration `name`. Errors: kUsage (the flags), kIo (a password file).
  Result<MigrationStart> Start(const std::string& name, std::string_view verb) const;

 private:
  Need source_ = Need::kNone;
  Need target_ = Need::kNone;
};

}  // namespace pgbaton::tools
