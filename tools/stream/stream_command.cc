#include "tools/stream/stream_command.h"

#include <fmt/format.h>
#include <signal.h>

#include <atomic>

#include "common/log.h"
#include "common/sql_ident.h"
#include "decoder/replication.h"
#include "decoder/stream.h"
#include "decoder/type_resolver.h"
#include "tools/apply/apply_command.h"
#include "tools/common/identity.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"
#include "tools/status/status_report.h"

namespace pgbaton::tools {
namespace {

class StreamCommand : public Command {
 public:
  explicit StreamCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub = app->add_subcommand("stream", "stream the source's changes into the queue");
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kNone);
    queue_.Register(sub);
    sub->add_option("--publication-tables", tables_,
                    "publish only these tables (schema.table, a part with dots or capitals in "
                    "double quotes), comma-separated; default: all")
        ->delimiter(',');
    sub->add_option("--batch-delay-ms", batch_delay_ms_,
                    "group commit: append to the queue at most this often")
        ->capture_default_str();
    AddMetricsOptions(sub, &metrics_);
    return sub;
  }

  Status Run() override {
    PGB_RETURN_IF_ERROR(queue_.Check("stream"));
    PGB_ASSIGN_OR_RETURN(std::string source, SourceConninfo(conn_));
    queue::QueueOptions qo = queue_.ToOptions(global_->name);
    MigrationCheck check = QueueCheck(qo, "stream");
    check.source_conninfo = source;
    check.bind = true;
    check.slot_must_be_idle = true;
    check.check_positions = true;
    PGB_ASSIGN_OR_RETURN(auto q,
                         OpenCheckedQueue(check, [&] { return queue::WorkQueue::Open(qo); }));
    PGB_RETURN_IF_ERROR(PrepareStreamSource(source, global_->name, tables_, q.get()));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = source;
    mo.queue = q.get();
    mo.record_samples = !queue_.kafka();  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));

    // The first signal stops cleanly, a second at once (tools/common/signals.h).
    InstallSignalHandlers();

    decoder::PgTypeResolver types(source);
    decoder::StreamOptions so;
    so.batch_max_delay = std::chrono::milliseconds(batch_delay_ms_);
    decoder::StreamStats stats;
    Status s = decoder::RunStream(q.get(), &types,
                                  decoder::PgSourceFactory(source, global_->name, global_->name),
                                  so, &StopRequested(), &stats);
    LogInfo("decoder stopped", WithResourceUsage({{"transactions", stats.transactions},
                                                  {"skipped_resent", stats.skipped},
                                                  {"appends", stats.appends},
                                                  {"messages", stats.messages},
                                                  {"reconnects", stats.reconnects},
                                                  {"confirmed_lsn", stats.confirmed.ToString()}}));
    RecordLastError(q.get(), "stream", s);
    return s;
  }

 private:
  GlobalOptions* global_;
  ConnectionFlags conn_;
  QueueFlags queue_;
  std::vector<std::string> tables_;
  int batch_delay_ms_ = 50;
  MetricsOptions metrics_;
};

}  // namespace

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
  PGB_ASSIGN_OR_RETURN(bool created, decoder::EnsurePublication(conn, name, tables));
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

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* g) {
  return std::make_unique<StreamCommand>(g);
}

}  // namespace pgbaton::tools
