#include "tools/stream/stream_command.h"

#include <fmt/format.h>

#include "common/log.h"
#include "decoder/stream.h"
#include "decoder/type_resolver.h"
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
    // The first signal stops cleanly, a second at once (tools/common/signals.h); one that comes
    // while a start-up check waits for a server ends the wait.
    InstallSignalHandlers();
    PGB_ASSIGN_OR_RETURN(auto q, OpenStreamingQueue(check, qo, global_->name, tables_));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = source;
    mo.queue = q.get();
    mo.record_samples = !queue_.kafka();  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));

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

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* g) {
  return std::make_unique<StreamCommand>(g);
}

}  // namespace pgbaton::tools
