#include "tools/stream/stream_command.h"

#include <fmt/format.h>

#include "common/log.h"
#include "decoder/stream.h"
#include "decoder/type_resolver.h"
#include "tools/common/apply_flags.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/common/resource_usage.h"
#include "tools/common/running_xacts.h"
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
    if (!cluster_.enabled()) return StreamOne(start, global().name, nullptr);
    PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                         ResolveCluster(cluster_, start, global().name, ClusterUse::kExisting));
    // One endpoint for the process; each database's series carry its name (label database).
    PGB_ASSIGN_OR_RETURN(endpoint_, StartMetricsServer(flags_.metrics));
    return ForEachMember(members, true,
                         [&](const ClusterMember& m) { return StreamOne(m.start, m.name, &m); });
  }

 private:
  Status StreamOne(const MigrationStart& start, const std::string& name,
                   const ClusterMember* member) {
    const std::string& source = start.source;
    PGB_ASSIGN_OR_RETURN(auto q, OpenStreamingQueue(start, stream_.tables));
    if (ddl_ == "replicate") PGB_RETURN_IF_ERROR(copy::EnsureDdlCapture(source, name));
    MetricsSamplerOptions mo = start.SamplerOptions(q.get());
    mo.record_samples = !flags_.queue.kafka();  // RocksDB: metadata writes are thread-safe
    VerbMetrics metrics;
    if (member == nullptr) {
      PGB_ASSIGN_OR_RETURN(metrics, StartVerbMetrics(flags_.metrics, mo));
    } else {
      metrics = StartDatabaseMetrics(endpoint_.get(), mo);
    }

    // About a second of WAL held by the slot on a 16+ source (tools/common/running_xacts.h).
    RunningXactsNudge nudge(source);
    decoder::PgTypeResolver types(source);
    decoder::StreamOptions so;
    so.batch_max_delay = std::chrono::milliseconds(stream_.batch_delay_ms);
    so.metrics = start.Series();
    decoder::StreamStats stats;
    Status s = decoder::RunStream(q.get(), &types, decoder::PgSourceFactory(source, name, name), so,
                                  &StopRequested(), &stats);
    LogFields fields = {
        {"transactions", stats.transactions}, {"skipped_resent", stats.skipped},
        {"appends", stats.appends},           {"messages", stats.messages},
        {"reconnects", stats.reconnects},     {"confirmed_lsn", stats.confirmed.ToString()}};
    if (member != nullptr) fields.insert(fields.begin(), {"database", member->database});
    LogInfo("decoder stopped", WithResourceUsage(std::move(fields)));
    RecordLastError(q.get(), "stream", s);
    return s;
  }

  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kRequired, Need::kNone);
    stream_.Register(sub);
    cluster_.Register(sub);
    AddDdlFlag(sub, &ddl_);
  }

  MigrationFlags flags_;
  ClusterFlags cluster_;
  std::unique_ptr<MetricsServer> endpoint_;  // cluster mode: --metrics-addr, for every database
  StreamFlags stream_;
  std::string ddl_ = "stop";  // --ddl
};

}  // namespace

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* g) {
  return std::make_unique<StreamCommand>(g, "stream", "stream the source's changes into the queue");
}

}  // namespace pgbaton::tools
