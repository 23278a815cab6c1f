#include "tools/run/run_command.h"

#include <fmt/format.h>

#include "applier/applier.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/stream_source.h"
#include "tools/common/stream_thread.h"
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

    StreamThread stream(source_, global_->name, q.get(), batch_delay_ms_);
    // --stop-at when nothing more commits: the slot's confirmed position says how far the
    // source was read, even past the last transaction.
    options.source_position = SlotReadPosition(source_, global_->name, q.get());

    applier::Applier applier(options, q.get());
    Status s = applier.Run(&StopRequested());
    stream.Stop();
    const Status& decoder_status = stream.status();
    const decoder::StreamStats& dstats = stream.stats();
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
