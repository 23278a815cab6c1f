#include "tools/stream/stream_command.h"

#include <fmt/format.h>

#include "common/log.h"
#include "decoder/stream.h"
#include "decoder/type_resolver.h"
#include "tools/common/apply_flags.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/stream_source.h"
#include "tools/initial_copy/ddl_capture.h"

namespace pgbaton::tools {
namespace {

class StreamCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_ASSIGN_OR_RETURN(MigrationStart start, flags_.Start(global().name, "stream"));
    const std::string& source = start.source;
    PGB_ASSIGN_OR_RETURN(auto q, OpenStreamingQueue(start, stream_.tables));
    if (ddl_ == "replicate") PGB_RETURN_IF_ERROR(copy::EnsureDdlCapture(source, global().name));
    MetricsSamplerOptions mo = start.SamplerOptions(q.get());
    mo.record_samples = !flags_.queue.kafka();  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(flags_.metrics, mo));

    decoder::PgTypeResolver types(source);
    decoder::StreamOptions so;
    so.batch_max_delay = std::chrono::milliseconds(stream_.batch_delay_ms);
    decoder::StreamStats stats;
    Status s = decoder::RunStream(q.get(), &types,
                                  decoder::PgSourceFactory(source, global().name, global().name),
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
  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kRequired, Need::kNone);
    stream_.Register(sub);
    AddDdlFlag(sub, &ddl_);
  }

  MigrationFlags flags_;
  StreamFlags stream_;
  std::string ddl_ = "stop";  // --ddl
};

}  // namespace

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* g) {
  return std::make_unique<StreamCommand>(g, "stream", "stream the source's changes into the queue");
}

}  // namespace pgbaton::tools
