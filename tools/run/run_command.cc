#include "tools/run/run_command.h"

#include <fmt/format.h>

#include <algorithm>

#include "applier/applier.h"
#include "common/log.h"
#include "queue/memory_tail.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/stream_source.h"
#include "tools/common/stream_thread.h"
#include "tools/initial_copy/ddl_capture.h"

namespace pgbaton::tools {
namespace {

class RunCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_ASSIGN_OR_RETURN(MigrationStart start, flags_.Start(global().name, "run"));
    if (!cluster_.enabled()) return RunOne(start, global().name, apply_.apply_jobs, nullptr);
    // Every database streams and applies on threads of its own; --apply-jobs is the cluster's
    // budget of apply sessions, shared out (each database has at least one).
    PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                         ResolveCluster(cluster_, start, global().name, ClusterUse::kExisting));
    const int jobs = std::max(1, apply_.apply_jobs / static_cast<int>(members.size()));
    // One endpoint for the process; each database's series carry its name (label database).
    PGB_ASSIGN_OR_RETURN(endpoint_, StartMetricsServer(flags_.metrics));
    LogInfo("run starting for a cluster",
            {{"databases", members.size()}, {"apply_jobs_per_database", jobs}});
    return ForEachMember(members, true,
                         [&](const ClusterMember& m) { return RunOne(m.start, m.name, jobs, &m); });
  }

 private:
  Status RunOne(const MigrationStart& start, const std::string& name, int apply_jobs,
                const ClusterMember* member) {
    const std::string& source = start.source;
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options, apply_.ToOptions(name, start.target));
    options.jobs = apply_jobs;
    options.metrics = start.Series();
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q,
                         OpenStreamingQueue(start, stream_.tables));
    // The applier takes what the decoder appended from memory while it keeps up: the queue still
    // holds every transaction durably first, and is read after a restart or when the applier
    // falls behind the memory budget. RocksDB only: a Kafka cursor is costly to open again.
    queue::MemoryTailQueue* tail = nullptr;
    if (!flags_.queue.kafka()) {
      PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::MemoryTailQueue> t,
                           queue::WithMemoryTail(std::move(q)));
      tail = t.get();
      q = std::move(t);
    }
    if (options.ddl_replicate) {
      // Installed by copy already; here for a migration that started without it (statements
      // before this point were not recorded, and stop the applier as schema_changed).
      PGB_RETURN_IF_ERROR(copy::EnsureDdlCapture(source, name));
      PGB_ASSIGN_OR_RETURN(options.ddl_table_selected, copy::LoadDdlFilter(q.get()));
    }
    // The sampler reads the oldest unapplied commit through a cursor of its own: from the
    // durable queue, so that it takes nothing the applier would then have to read back.
    MetricsSamplerOptions mo = start.SamplerOptions(tail != nullptr ? tail->backend() : q.get());
    mo.record_samples = !flags_.queue.kafka();  // RocksDB: metadata writes are thread-safe
    VerbMetrics metrics;
    if (member == nullptr) {
      PGB_ASSIGN_OR_RETURN(metrics, StartVerbMetrics(flags_.metrics, mo));
    } else {
      metrics = StartDatabaseMetrics(endpoint_.get(), mo);
    }

    StreamThread stream(source, name, q.get(), stream_.batch_delay_ms, start.Series());
    // --stop-at when nothing more commits: the slot's confirmed position says how far the
    // source was read, even past the last transaction.
    options.source_position = SlotReadPosition(source, name, q.get());

    applier::Applier applier(options, q.get());
    Status s = applier.Run(&StopRequested());
    stream.Stop();
    const Status& decoder_status = stream.status();
    const decoder::StreamStats& dstats = stream.stats();
    applier::ApplierStats st = applier.stats();
    LogFields fields = {{"decoded_transactions", dstats.transactions},
                        {"confirmed_lsn", dstats.confirmed.ToString()},
                        {"applied_transactions", st.transactions},
                        {"applied_changes", st.changes},
                        {"target_transactions", st.groups},
                        {"copy_rows", st.copy_rows},
                        {"ddl_replayed", st.ddl_replayed},
                        {"ddl_skipped", st.ddl_skipped},
                        {"applied_lsn", st.applied_lsn.ToString()}};
    if (tail != nullptr) {
      const queue::MemoryTailStats ms = tail->memory_stats();
      fields.emplace_back("read_from_memory", ms.from_memory);
      fields.emplace_back("read_from_queue", ms.from_backend);
    }
    if (member != nullptr) fields.insert(fields.begin(), {"database", member->database});
    LogInfo("run stopped", WithResourceUsage(std::move(fields)));
    RecordLastError(q.get(), "run", decoder_status.ok() ? s : decoder_status);
    if (!decoder_status.ok()) return decoder_status;
    return s;
  }

  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kRequired, Need::kRequired);
    apply_.Register(sub);
    stream_.Register(sub);
    cluster_.Register(sub);
  }

  MigrationFlags flags_;
  ClusterFlags cluster_;
  std::unique_ptr<MetricsServer> endpoint_;  // cluster mode: --metrics-addr, for every database
  ApplyFlags apply_;
  StreamFlags stream_;
};

}  // namespace

std::unique_ptr<Command> MakeRunCommand(GlobalOptions* g) {
  return std::make_unique<RunCommand>(
      g, "run", "stream the source and apply onto the target, in one process");
}

}  // namespace pgbaton::tools
