#include "tools/status/status_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "common/conninfo.h"
#include "common/pg.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/signals.h"
#include "tools/config/connection.h"
#include "tools/config/duration.h"
#include "tools/config/queue_flags.h"
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

class StatusCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_RETURN_IF_ERROR(queue_.Check("status"));
    PGB_ASSIGN_OR_RETURN(auto interval, ParseInterval(interval_));
    if (!conn_.source.empty()) {
      PGB_ASSIGN_OR_RETURN(source_, SourceConninfo(conn_));
    }
    if (!conn_.target.empty()) {
      PGB_ASSIGN_OR_RETURN(target_, TargetConninfo(conn_));
    }

    queue::QueueOptions qo = queue_.ToOptions(global().name);
    qo.read_only = true;
    qo.create_if_missing = false;
    PGB_ASSIGN_OR_RETURN(auto q, queue::WorkQueue::Open(qo));
    {
      // Positions of another cluster or database would be read as this migration's: refuse.
      // A server that cannot be reached is shown in the report instead (below).
      MigrationCheck check = QueueCheck(qo, "status");
      check.source_conninfo = source_;
      check.target_conninfo = target_;
      auto live = CheckSides(check);
      if (!live.ok() && live.status().code() == ErrorCode::kSourceIsTarget) return live.status();
      if (live.ok()) PGB_RETURN_IF_ERROR(CheckQueue(check, *live, q.get(), /*read_only=*/true));
    }
    std::string location = queue_.Describe(global().name);

    if (watch_) InstallSignalHandlers();
    const bool tty = isatty(STDOUT_FILENO) != 0;
    std::optional<status::StatusReport> previous;
    while (true) {
      status::StatusInputs in;
      in.name = global().name;
      in.queue_location = location;
      in.rate_window_seconds = rate_window_seconds_;
      if (!source_.empty()) {
        in.source_label = DescribeConninfo(source_);
        in.source = Connection(source_, "source", &source_conn_, &in.source_error);
      }
      if (!target_.empty()) {
        in.target_label = DescribeConninfo(target_);
        in.target = Connection(target_, "target", &target_conn_, &in.target_error);
      }
      PGB_ASSIGN_OR_RETURN(status::StatusReport r,
                           status::CollectStatus(q.get(), in, previous ? &*previous : nullptr));
      // A connection that failed during the queries is opened again next time.
      if (!r.source_error.empty()) source_conn_.reset();
      if (!r.target_error.empty()) target_conn_.reset();
      if (json_) {
        std::string line = status::StatusToJson(r).dump(watch_ ? -1 : 2);
        std::printf("%s\n", line.c_str());
      } else {
        if (watch_ && tty) std::fputs("\033[H\033[2J", stdout);
        std::fputs(status::StatusToText(r).c_str(), stdout);
        if (watch_ && !tty) std::fputs("\n", stdout);
      }
      std::fflush(stdout);
      if (!watch_) return Status::Ok();
      previous = std::move(r);
      auto until = std::chrono::steady_clock::now() + interval;
      while (!StopRequested().load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (StopRequested().load()) return Status::Ok();
    }
  }

 private:
  void AddFlags(CLI::App* sub) override {
    queue_.Register(sub, {.topic_defaults_to_name = true});
    AddConnectionOptions(sub, &conn_);
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
  std::string source_, target_;
  bool json_ = false;
  bool watch_ = false;
  std::string interval_ = "2s";
  int rate_window_seconds_ = 60;
  std::optional<PgConn> source_conn_, target_conn_;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand(GlobalOptions* g) {
  return std::make_unique<StatusCommand>(
      g, "status", "show each stage's position, the lag, rates, ETA and the slot's WAL");
}

}  // namespace pgbaton::tools
