#include "tools/stream/stream_command.h"

#include <fmt/format.h>
#include <signal.h>

#include <atomic>

#include "catalog/source_catalog.h"
#include "common/log.h"
#include "common/sql_ident.h"
#include "decoder/replication.h"
#include "decoder/stream.h"
#include "decoder/type_resolver.h"
#include "tools/apply/apply_command.h"
#include "tools/common/identity.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/status/status_report.h"

namespace pgbaton::tools {
namespace {

class StreamCommand : public Command {
 public:
  explicit StreamCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub = app->add_subcommand("stream", "stream the source's changes into the queue");
    sub->add_option("--source", source_, "connection string of the old cluster")->required();
    sub->add_option("--queue-dir", queue_dir_, "the RocksDB work queue directory");
    sub->add_option("--kafka-brokers", kafka_brokers_, "Kafka bootstrap servers (host:port,...)");
    sub->add_option("--kafka-topic", kafka_topic_, "Kafka topic of the queue");
    sub->add_option("--kafka-state-dir", kafka_state_dir_, "local state for the Kafka writer");
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
    if (queue_dir_.empty() && kafka_brokers_.empty()) {
      return Status::Error(ErrorCode::kUsage, "stream: no queue given",
                           "pass --queue-dir DIR (or --kafka-brokers and --kafka-topic)");
    }
    queue::QueueOptions qo;
    qo.dir = queue_dir_;
    qo.kafka_brokers = kafka_brokers_;
    qo.kafka_topic = kafka_topic_;
    qo.kafka_state_dir = kafka_state_dir_;
    qo.migration_name = global_->name;
    MigrationCheck check = QueueCheck(qo, "stream");
    check.source_conninfo = source_;
    check.bind = true;
    check.slot_must_be_idle = true;
    check.check_positions = true;
    PGB_ASSIGN_OR_RETURN(auto q,
                         OpenCheckedQueue(check, [&] { return queue::WorkQueue::Open(qo); }));
    PGB_RETURN_IF_ERROR(PrepareStreamSource(source_, global_->name, tables_, q.get()));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = source_;
    mo.queue = q.get();
    mo.record_samples = kafka_brokers_.empty();  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));

    // The same handlers as apply and run: the first signal stops cleanly, a second at once.
    std::atomic<bool>* stop = InstallStopSignals();

    decoder::PgTypeResolver types(source_);
    decoder::StreamOptions so;
    so.batch_max_delay = std::chrono::milliseconds(batch_delay_ms_);
    decoder::StreamStats stats;
    Status s = decoder::RunStream(q.get(), &types,
                                  decoder::PgSourceFactory(source_, global_->name, global_->name),
                                  so, stop, &stats);
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
  std::string source_, queue_dir_, kafka_brokers_, kafka_topic_, kafka_state_dir_;
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

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* g) {
  return std::make_unique<StreamCommand>(g);
}

}  // namespace pgbaton::tools
