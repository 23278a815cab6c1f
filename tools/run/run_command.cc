#include "tools/run/run_command.h"

#include <fmt/format.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "applier/applier.h"
#include "common/log.h"
#include "decoder/stream.h"
#include "decoder/type_resolver.h"
#include "queue/work_queue.h"
#include "tools/apply/apply_command.h"
#include "tools/common/identity.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/status/status_report.h"
#include "tools/stream/stream_command.h"

namespace pgbaton::tools {
namespace {

class RunCommand : public Command {
 public:
  explicit RunCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub =
        app->add_subcommand("run", "stream the source and apply onto the target, in one process");
    sub->add_option("--source", source_, "connection string of the old cluster")->required();
    flags_.Register(sub, /*with_stop_at=*/true);
    sub->add_option("--queue-dir", queue_dir_, "the RocksDB work queue directory");
    sub->add_option("--kafka-brokers", kafka_brokers_, "Kafka bootstrap servers (host:port,...)");
    sub->add_option("--kafka-topic", kafka_topic_, "Kafka topic of the queue");
    sub->add_option("--kafka-state-dir", kafka_state_dir_, "local state for the Kafka queue");
    sub->add_option("--publication-tables", tables_,
                    "publish only these tables (schema.table), comma-separated; default: all")
        ->delimiter(',');
    sub->add_option("--batch-delay-ms", batch_delay_ms_,
                    "decoder group commit: append to the queue at most this often")
        ->capture_default_str();
    AddMetricsOptions(sub, &metrics_);
    return sub;
  }

  Status Run() override {
    if (queue_dir_.empty() && kafka_brokers_.empty()) {
      return Status::Error(ErrorCode::kUsage, "run: no queue given",
                           "pass --queue-dir DIR (or --kafka-brokers and --kafka-topic)");
    }
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options, flags_.ToOptions(global_->name));
    queue::QueueOptions qo;
    qo.dir = queue_dir_;
    qo.kafka_brokers = kafka_brokers_;
    qo.kafka_topic = kafka_topic_;
    qo.kafka_state_dir = kafka_state_dir_;
    qo.migration_name = global_->name;
    // Before anything is created: the servers and the queue belong to this migration, the slot
    // is not streaming elsewhere, the positions chain (tools/common/identity.h).
    MigrationCheck check = QueueCheck(qo, "run");
    check.source_conninfo = source_;
    check.target_conninfo = options.target_conninfo;
    check.bind = true;
    check.slot_must_be_idle = true;
    check.check_positions = true;
    PGB_ASSIGN_OR_RETURN(auto q,
                         OpenCheckedQueue(check, [&] { return queue::WorkQueue::Open(qo); }));
    PGB_RETURN_IF_ERROR(PrepareStreamSource(source_, global_->name, tables_, q.get()));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = source_;
    mo.target_conninfo = options.target_conninfo;
    mo.queue = q.get();
    mo.record_samples = kafka_brokers_.empty();  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));

    std::atomic<bool>* stop = InstallStopSignals();
    std::atomic<bool> decoder_stop{false};
    Status decoder_status;
    decoder::StreamStats dstats;
    std::thread decoder_thread([&] {
      pthread_setname_np(pthread_self(), "pgb-decode");
      decoder::PgTypeResolver types(source_);
      decoder::StreamOptions so;
      so.batch_max_delay = std::chrono::milliseconds(batch_delay_ms_);
      decoder_status = decoder::RunStream(
          q.get(), &types, decoder::PgSourceFactory(source_, global_->name, global_->name), so,
          &decoder_stop, &dstats);
      if (!decoder_status.ok()) stop->store(true);  // the applier drains what it has and stops
    });

    // --stop-at when nothing more commits: the slot's confirmed position says how far the
    // source was read, even past the last transaction.
    std::optional<PgConn> source_conn;
    std::string slot = global_->name;
    queue::WorkQueue* queue = q.get();
    options.source_position = [&, queue]() -> Lsn {
      Lsn best;
      auto last = queue->LastEndLsn();
      if (last.ok()) best = *last;
      if (!source_conn) {
        ConnectOptions co;
        co.label = "source";
        auto c = PgConn::Connect(source_, co);
        if (!c.ok()) return best;
        source_conn.emplace(std::move(*c));
      }
      auto v = source_conn->QueryValue(
          "select confirmed_flush_lsn from pg_catalog.pg_replication_slots where slot_name = $1",
          {slot});
      if (!v.ok()) {
        source_conn.reset();
        return best;
      }
      auto l = Lsn::Parse(*v);
      return l.ok() ? std::max(best, *l) : best;
    };

    applier::Applier applier(options, q.get());
    Status s = applier.Run(stop);
    decoder_stop.store(true);
    decoder_thread.join();
    applier::ApplierStats st = applier.stats();
    LogInfo("run stopped", WithResourceUsage({{"decoded_transactions", dstats.transactions},
                                              {"confirmed_lsn", dstats.confirmed.ToString()},
                                              {"applied_transactions", st.transactions},
                                              {"applied_changes", st.changes},
                                              {"target_transactions", st.groups},
                                              {"copy_rows", st.copy_rows},
                                              {"applied_lsn", st.applied_lsn.ToString()}}));
    RecordLastError(q.get(), "run", decoder_status.ok() ? s : decoder_status);
    if (!decoder_status.ok()) return decoder_status;
    return s;
  }

 private:
  GlobalOptions* global_;
  ApplyFlags flags_;
  std::string source_, queue_dir_, kafka_brokers_, kafka_topic_, kafka_state_dir_;
  std::vector<std::string> tables_;
  int batch_delay_ms_ = 50;
  MetricsOptions metrics_;
};

}  // namespace

std::unique_ptr<Command> MakeRunCommand(GlobalOptions* g) {
  return std::make_unique<RunCommand>(g);
}

}  // namespace pgbaton::tools
