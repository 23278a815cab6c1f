#include "tools/common/migration_flags.h"

namespace pgbaton::tools {

MetricsSamplerOptions MigrationStart::SamplerOptions(queue::WorkQueue* q) const {
  MetricsSamplerOptions o;
  o.name = check.name;
  o.source_conninfo = source;
  o.target_conninfo = target;
  o.queue = q;
  o.database = database;
  return o;
}

void MigrationFlags::Register(CLI::App* sub, Need source, Need target, QueueFlagsUse use) {
  source_ = source;
  target_ = target;
  AddConnectionOptions(sub, &conn, source, target);
  queue.Register(sub, std::move(use));
  AddMetricsOptions(sub, &metrics);
}

Result<MigrationStart> MigrationFlags::Start(const std::string& name, std::string_view verb) const {
  PGB_RETURN_IF_ERROR(queue.Check(verb));
  MigrationStart s;
  if (source_ != Need::kNone) {
    PGB_ASSIGN_OR_RETURN(s.source, SourceConninfo(conn));
  }
  if (target_ != Need::kNone) {
    PGB_ASSIGN_OR_RETURN(s.target, TargetConninfo(conn));
  }
  s.queue = queue.ToOptions(name);
  s.check = QueueCheck(s.queue, std::string(verb));
  s.check.source_conninfo = s.source;
  s.check.target_conninfo = s.target;
  return s;
}

}  // namespace pgbaton::tools
