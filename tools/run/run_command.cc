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
#include "tools/common/apply_flags.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/stream_source.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"

namespace pgbaton::tools {
namespace {

class RunCommand : public Command {
 public:
  explicit RunCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub =
        app->add_subcommand("run", "stream the source and apply onto the target, in one process");
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kRequired);
    flags_.Register(sub);
    queue_.Register(sub);
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
    PGB_RETURN_IF_ERROR(queue_.Check("run"));
    PGB_ASSIGN_OR_RETURN(source_, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(std::string target, TargetConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options, flags_.ToOptions(global_->name, target));
    queue::QueueOptions qo = queue_.ToOptions(global_->name);
    // Before anything is created: the servers and the queue belong to this migration, the slot
    // is not streaming elsewhere, the positions chain (tools/common/identity.h).
    MigrationCheck check = QueueCheck(qo, "run");
    check.source_conninfo = source_;
    check.target_conninfo = options.target_conninfo;
    check.bind = true;
    check.slot_must_be_idle = true;
    check.check_positions = true;
    // The first signal stops cleanly, a second at once (tools/common/signals.h); one that comes
    // while a start-up check waits for a server ends the wait.
    InstallSignalHandlers();
    PGB_ASSIGN_OR_RETURN(auto q, OpenStreamingQueue(check, qo, global_->name, tables_));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = source_;
    mo.target_conninfo = options.target_conninfo;
    mo.queue = q.get();
    mo.record_samples = !queue_.kafka();  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));

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
      if (!decoder_status.ok()) RequestStop();  // the applier drains what it has and stops
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
    Status s = applier.Run(&StopRequested());
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
  ConnectionFlags conn_;
  ApplyFlags flags_;
  QueueFlags queue_;
  std::string source_;  // resolved from conn_ (with the password file's password)
  std::vector<std::string> tables_;
  int batch_delay_ms_ = 50;
  MetricsOptions metrics_;
};

}  // namespace

std::unique_ptr<Command> MakeRunCommand(GlobalOptions* g) {
  return std::make_unique<RunCommand>(g);
}

}  // namespace pgbaton::tools
