#include "tools/status/status_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "common/conninfo.h"
#include "common/pg.h"
#include "queue/work_queue.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/common/signals.h"
#include "tools/config/connection.h"
#include "tools/config/duration.h"
#include "tools/config/queue_flags.h"
#include "tools/globals_sync/sync.h"
#include "tools/status/status_report.h"

namespace pgbaton::tools {
namespace {

// --interval (tools/config/duration.h), at least 100ms.
Result<std::chrono::milliseconds> ParseInterval(const std::string& text) {
  std::optional<std::chrono::milliseconds> d = ParseDuration(text);
  if (!d || *d < std::chrono::milliseconds(100)) {
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("--interval \"{}\" is not a duration of 100ms or more", text),
                         "write it like 2s, 500ms or 1m");
  }
  return *d;
}

// One migration status watches: its queue, open read-only, and its connections.
struct Watched {
  std::string database;  // cluster mode: the database; "" otherwise
  std::string name;
  std::string source, target;  // conninfos ("" when not given)
  std::string location;
  std::unique_ptr<queue::WorkQueue> queue;
  std::optional<PgConn> source_conn, target_conn;
  std::optional<status::StatusReport> previous;
};

class StatusCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_RETURN_IF_ERROR(queue_.Check("status"));
    PGB_ASSIGN_OR_RETURN(auto interval, ParseInterval(interval_));
    std::string source, target;
    if (!conn_.source.empty()) {
      PGB_ASSIGN_OR_RETURN(source, SourceConninfo(conn_));
    }
    if (!conn_.target.empty()) {
      PGB_ASSIGN_OR_RETURN(target, TargetConninfo(conn_));
    }

    std::vector<Watched> watched;
    if (!cluster_.enabled()) {
      PGB_RETURN_IF_ERROR(Open("", global().name, source, target, queue_.ToOptions(global().name),
                               queue_.Describe(global().name), &watched));
    } else {
      if (source.empty() && target.empty()) {
        return Status::Error(ErrorCode::kUsage, "status --databases needs --source or --target",
                             "the databases are read from the source (or the target)");
      }
      MigrationStart start;
      start.source = source;
      start.target = target;
      start.queue = queue_.ToOptions(global().name);
      start.check = QueueCheck(start.queue, "status");
      PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                           ResolveCluster(cluster_, start, global().name, ClusterUse::kExisting));
      for (const ClusterMember& m : members) databases_.push_back(m.database);
      for (const ClusterMember& m : members) {
        PGB_RETURN_IF_ERROR(Open(m.database, m.name, m.start.source, m.start.target, m.start.queue,
                                 m.start.queue.dir, &watched));
      }
    }

    if (watch_) InstallSignalHandlers();
    const bool tty = isatty(STDOUT_FILENO) != 0;
    while (true) {
      std::vector<status::ClusterMemberReport> reports;
      for (Watched& w : watched) {
        PGB_ASSIGN_OR_RETURN(status::StatusReport r, Collect(&w));
        reports.push_back({w.database, std::move(r)});
      }
      const std::optional<GlobalsState> globals = Globals(source, target);
      if (json_) {
        nlohmann::json j = cluster_.enabled() ? status::ClusterStatusToJson(reports)
                                              : status::StatusToJson(reports.front().report);
        if (globals) j["globals"] = globals->json;
        std::printf("%s\n", j.dump(watch_ ? -1 : 2).c_str());
      } else {
        if (watch_ && tty) std::fputs("\033[H\033[2J", stdout);
        std::fputs(cluster_.enabled() ? status::ClusterStatusToText(reports).c_str()
                                      : status::StatusToText(reports.front().report).c_str(),
                   stdout);
        if (globals) std::fputs(globals->text.c_str(), stdout);
        if (watch_ && !tty) std::fputs("\n", stdout);
      }
      std::fflush(stdout);
      if (!watch_) return Status::Ok();
      for (size_t i = 0; i < watched.size(); ++i) watched[i].previous = reports[i].report;
      auto until = std::chrono::steady_clock::now() + interval;
      while (!StopRequested().load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (StopRequested().load()) return Status::Ok();
    }
  }

 private:
  struct GlobalsState {
    nlohmann::json json;
    std::string text;
  };

  // Cluster mode with both servers: whether the roles and databases are still level with the
  // source since pgbaton last synced them (globals are not in the WAL: a role created or a
  // setting changed on the source meanwhile is drift, which cutover refuses). Read-only.
  std::optional<GlobalsState> Globals(const std::string& source, const std::string& target) {
    if (!cluster_.enabled() || source.empty() || target.empty()) return std::nullopt;
    globals::SyncOptions o;
    o.source = source;
    o.target = target;
    o.diff.databases = databases_;
    o.application_name = "pgbaton status";
    globals::SyncOutcome out;
    Status st = globals::SyncGlobals(o, &out);
    GlobalsState g;
    if (!st.ok()) {
      g.json = {{"known", false}, {"error", st.message()}};
      g.text = fmt::format("globals: not compared: {}\n", st.message());
      return g;
    }
    if (!out.synced_before) {
      g.json = {{"known", true}, {"synced", false}, {"differences", out.drift.actions.size()}};
      g.text = fmt::format(
          "globals: never synced by pgbaton ({} difference(s); pgbaton globals --apply)\n",
          out.drift.actions.size());
      return g;
    }
    nlohmann::json changes = nlohmann::json::array();
    for (const globals::Action& a : out.drift.actions) changes.push_back(globals::ActionLine(a));
    g.json = {{"known", true},
              {"synced", true},
              {"level", out.drift.level()},
              {"differences", out.drift.actions.size()},
              {"changes", changes}};
    if (out.drift.level()) {
      g.text = "globals: level with the source\n";
    } else {
      g.text = fmt::format(
          "globals: {} difference(s) since the last sync (pgbaton globals shows them, --apply "
          "levels them; cutover refuses until then)\n",
          out.drift.actions.size());
    }
    return g;
  }

  // Opens one migration's queue read-only after checking the servers are the ones it was made
  // for, and adds it to `out`.
  Status Open(const std::string& database, const std::string& name, const std::string& source,
              const std::string& target, queue::QueueOptions qo, const std::string& location,
              std::vector<Watched>* out) {
    qo.read_only = true;
    qo.create_if_missing = false;
    PGB_ASSIGN_OR_RETURN(auto q, queue::WorkQueue::Open(qo));
    // Positions of another cluster or database would be read as this migration's: refuse.
    // A server that cannot be reached is shown in the report instead.
    MigrationCheck check = QueueCheck(qo, "status");
    check.source_conninfo = source;
    check.target_conninfo = target;
    auto live = CheckSides(check);
    if (!live.ok() && live.status().code() == ErrorCode::kSourceIsTarget) return live.status();
    if (live.ok()) PGB_RETURN_IF_ERROR(CheckQueue(check, *live, q.get(), /*read_only=*/true));
    Watched w;
    w.database = database;
    w.name = name;
    w.source = source;
    w.target = target;
    w.location = location;
    w.queue = std::move(q);
    out->push_back(std::move(w));
    return Status::Ok();
  }

  Result<status::StatusReport> Collect(Watched* w) {
    status::StatusInputs in;
    in.name = w->name;
    in.queue_location = w->location;
    in.rate_window_seconds = rate_window_seconds_;
    if (!w->source.empty()) {
      in.source_label = DescribeConninfo(w->source);
      in.source = Connection(w->source, "source", &w->source_conn, &in.source_error);
    }
    if (!w->target.empty()) {
      in.target_label = DescribeConninfo(w->target);
      in.target = Connection(w->target, "target", &w->target_conn, &in.target_error);
    }
    PGB_ASSIGN_OR_RETURN(
        status::StatusReport r,
        status::CollectStatus(w->queue.get(), in, w->previous ? &*w->previous : nullptr));
    // A connection that failed during the queries is opened again next time.
    if (!r.source_error.empty()) w->source_conn.reset();
    if (!r.target_error.empty()) w->target_conn.reset();
    return r;
  }

  void AddFlags(CLI::App* sub) override {
    queue_.Register(sub, {.topic_defaults_to_name = true});
    AddConnectionOptions(sub, &conn_);
    cluster_.Register(sub);
    sub->add_flag("--json", json_, "print JSON (one object; one line per refresh with --watch)");
    sub->add_flag("--watch", watch_, "refresh until interrupted");
    sub->add_option("--interval", interval_, "time between refreshes with --watch")
        ->capture_default_str();
    sub->add_option("--rate-window", rate_window_seconds_,
                    "seconds the rates are averaged over (5 to 60; samples come every 5 s)")
        ->check(CLI::Range(5, 60))
        ->capture_default_str();
  }

  // The open connection, connecting when there is none; null with `error` set when it fails.
  static PgConn* Connection(const std::string& conninfo, const char* label,
                            std::optional<PgConn>* conn, std::string* error) {
    if (!*conn) {
      ConnectOptions co;
      co.label = label;
      auto c = PgConn::Connect(conninfo, co);
      if (!c.ok()) {
        *error = ScrubSecrets(c.status().message());
        return nullptr;
      }
      conn->emplace(std::move(*c));
    }
    return &**conn;
  }

  QueueFlags queue_;
  ConnectionFlags conn_;
  ClusterFlags cluster_;
  std::vector<std::string> databases_;  // cluster mode: the selected databases
  bool json_ = false;
  bool watch_ = false;
  std::string interval_ = "2s";
  int rate_window_seconds_ = 60;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand(GlobalOptions* g) {
  return std::make_unique<StatusCommand>(
      g, "status", "show each stage's position, the lag, rates, ETA and the slot's WAL");
}

}  // namespace pgbaton::tools
