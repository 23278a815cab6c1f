#include "tools/common/stream_source.h"

#include <fmt/format.h>

#include "catalog/source_catalog.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/sql_ident.h"
#include "decoder/replication.h"
#include "tools/common/identity.h"
#include "tools/common/signals.h"
#include "tools/common/startup_retry.h"

namespace pgbaton::tools {

void StreamFlags::Register(CLI::App* sub) {
  sub->add_option("--publication-tables", tables,
                  "publish only these tables (schema.table, a part with dots or capitals in "
                  "double quotes), comma-separated; default: all")
      ->delimiter(',');
  sub->add_option("--batch-delay-ms", batch_delay_ms,
                  "decoder group commit: append to the queue at most this often")
      ->capture_default_str();
}

Status PrepareStreamSource(const std::string& source, const std::string& name,
                           const std::vector<std::string>& publication_tables,
                           queue::WorkQueue* queue) {
  ConnectOptions co;
  co.label = "source";
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(source, co));
  PGB_RETURN_IF_ERROR(decoder::CheckLogicalDecoding(conn));
  std::vector<QualifiedName> tables;
  for (const std::string& text : publication_tables) {
    PGB_ASSIGN_OR_RETURN(QualifiedName t,
                         ParseQualifiedName(text, "public", "--publication-tables"));
    tables.push_back(std::move(t));
  }
  PGB_ASSIGN_OR_RETURN(bool created, catalog::EnsurePublication(conn, name, tables));
  if (created) LogInfo("created publication", {{"publication", name}});

  PGB_ASSIGN_OR_RETURN(auto rc, decoder::ReplicationConnection::Connect(source, "source"));
  PGB_ASSIGN_OR_RETURN(bool exists, rc->SlotExists(name));
  if (exists) return Status::Ok();
  // A slot is created only for a queue that never had one and never held a transaction: the
  // high-water mark survives trims, so an applier that trimmed the queue to empty does not make
  // a dropped slot look new.
  PGB_ASSIGN_OR_RETURN(bool streamed, QueueHasStreamed(queue));
  if (streamed) {
    PGB_ASSIGN_OR_RETURN(Lsn high, QueueHighWater(queue));
    return Status::Error(
        ErrorCode::kSlotMissing,
        fmt::format("slot \"{}\" on {} does not exist, but this migration's queue was fed by "
                    "it{}: the slot was dropped mid-migration and the changes made since are lost",
                    name, rc->Describe(),
                    high.IsValid() ? fmt::format(" up to {}", high.ToString()) : ""),
        "nothing was created; start over: `pgbaton cleanup`, then `pgbaton copy` into an empty "
        "database");
  }
  PGB_ASSIGN_OR_RETURN(auto slot, rc->CreateSlot(name, /*export_snapshot=*/false));
  PGB_RETURN_IF_ERROR(RecordSlot(queue, name, slot.consistent_point));
  LogInfo("created slot", {{"slot", name}, {"consistent_point", slot.consistent_point.ToString()}});
  return Status::Ok();
}

Result<std::unique_ptr<queue::WorkQueue>> OpenStreamingQueue(
    const MigrationStart& start, const std::vector<std::string>& publication_tables) {
  MigrationCheck check = start.check;
  check.bind = true;
  check.slot_must_be_idle = true;
  check.check_positions = true;
  InstallSignalHandlers();
  std::unique_ptr<queue::WorkQueue> q;
  PGB_RETURN_IF_ERROR(RetryWhileUnreachable("identity and position checks", [&]() -> Status {
    PGB_ASSIGN_OR_RETURN(
        q, OpenCheckedQueue(check, [&] { return queue::WorkQueue::Open(start.queue); }));
    return Status::Ok();
  }));
  PGB_RETURN_IF_ERROR(RetryWhileUnreachable("publication and slot", [&] {
    return PrepareStreamSource(start.source, check.name, publication_tables, q.get());
  }));
  return q;
}

}  // namespace pgbaton::tools
