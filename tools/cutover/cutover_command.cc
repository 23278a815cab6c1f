#include "tools/cutover/cutover_command.h"

#include <fmt/format.h>

#include <cstdio>

#include "tools/config/connection.h"
#include "tools/config/duration.h"
#include "tools/config/queue_flags.h"
#include "tools/cutover/cutover.h"
#include "tools/cutover/fleet.h"

namespace pgbaton::tools {

namespace {

// `text` as a duration (tools/config/duration.h); kUsage naming `flag` when it is not one.
Result<std::chrono::milliseconds> DurationFlag(const std::string& flag, const std::string& text) {
  std::optional<std::chrono::milliseconds> d = ParseDuration(text);
  if (!d) {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("{} must be a duration like 1s, 500ms or 2m, not \"{}\"", flag, text));
  }
  return *d;
}

class CutoverCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    o_.name = global().name;
    PGB_RETURN_IF_ERROR(queue_.Check("cutover"));
    PGB_ASSIGN_OR_RETURN(o_.source_conninfo, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(o_.target_conninfo, TargetConninfo(conn_));
    o_.queue_dir = queue_.dir;
    o_.kafka_brokers = queue_.kafka_brokers;
    o_.kafka_topic = queue_.kafka_topic;
    if (o_.reverse && o_.queue_dir.empty() && o_.reverse_queue_dir.empty()) {
      return Status::Error(ErrorCode::kUsage,
                           "cutover: --reverse over a Kafka queue needs --reverse-queue-dir",
                           "pass the directory of the reverse stream's RocksDB queue");
    }
    PGB_ASSIGN_OR_RETURN(o_.max_lag, DurationFlag("--max-lag", max_lag_));
    PGB_ASSIGN_OR_RETURN(o_.timeout, DurationFlag("--timeout", timeout_));
    PGB_ASSIGN_OR_RETURN(o_.flip_timeout, DurationFlag("--flip-timeout", flip_timeout_));
    o_.pgbouncers.clear();
    for (const auto& json : pgbouncer_tables_) {
      PGB_ASSIGN_OR_RETURN(cutover::PgBouncerMember m, cutover::ParseMemberJson(json));
      o_.pgbouncers.push_back(std::move(m));
    }
    cutover::CutoverReport report;
    Status s = cutover::RunCutover(o_, &report);
    std::string out = json_ ? report.ToJson().dump(2) + "\n" : report.ToText();
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return s;
  }

 private:
  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kRequired);
    queue_.Register(sub, {.kafka_state_dir = false,
                          .dir_help = "the migration's queue (the timeline is kept there)"});
    sub->add_option("--fence", o_.fence,
                    "how writers are fenced: pgbouncer:ADMIN_CONNINFO (repeat it, one per "
                    "PgBouncer process, for a fleet), roles:R1,R2 or readonly")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sub->add_option("--flip", o_.flip,
                    "how writers are flipped: pgbouncer (the default with --fence pgbouncer:), "
                    "roles[:R1,R2] or command:CMD");
    sub->add_option("--pgbouncer-ini", o_.pgbouncer_ini,
                    "--flip pgbouncer: the pgbouncer.ini whose [databases] entry is rewritten; "
                    "once per --fence pgbouncer:, in the same order (\"\" for a member flipped by "
                    "--pgbouncer-flip-cmd)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sub->add_option("--pgbouncer-flip-cmd", o_.pgbouncer_flip_cmd,
                    "--flip pgbouncer: a shell command that points a PgBouncer at "
                    "PGBATON_FLIP_HOST:PGBATON_FLIP_PORT (for one whose files are elsewhere); once "
                    "per --fence pgbouncer:, in the same order (\"\" for a member with an ini)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sub->add_option("--flip-timeout", flip_timeout_,
                    "a fleet's flip retries a failing PgBouncer this long, then flips every "
                    "one back to the old cluster")
        ->capture_default_str();
    sub->add_flag("--terminate-bypass", o_.terminate_bypass,
                  "terminate client sessions that write to the source around the fence "
                  "(default: abort the cutover)");
    // [[cutover.pgbouncer]] tables of the config file, each as a JSON object (tools/config).
    sub->add_option("--pgbouncer", pgbouncer_tables_)
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->group("");
    sub->add_option("--pgbouncer-db", o_.pgbouncer_db,
                    "the PgBouncer database to pause (default: --source's dbname)");
    sub->add_option("--max-lag", max_lag_, "refuse when the applier is further behind")
        ->capture_default_str();
    sub->add_option("--max-lag-bytes", o_.max_lag_bytes,
                    "refuse when more WAL than this is not applied yet")
        ->capture_default_str();
    sub->add_option("--timeout", timeout_, "bound of each wait (PAUSE, drain, flip hook)")
        ->capture_default_str();
    sub->add_flag("--reverse", o_.reverse,
                  "start a stream from the new cluster back to the old one before the flip");
    sub->add_option("--reverse-queue-dir", o_.reverse_queue_dir,
                    "the reverse stream's queue (default: <queue-dir>.reverse)");
    sub->add_option("--large-object-jobs", o_.large_object_jobs,
                    "connection pairs that compare and copy large objects (before and inside "
                    "the fence)")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    sub->add_flag("--sync-globals", o_.sync_globals,
                  "apply roles and settings changed on the source since the last globals sync "
                  "inside the fence (default: refuse with exit 83 while they differ)");
    sub->add_flag("--dry-run", o_.dry_run, "run every check and print the plan; fence nothing");
    sub->add_flag("--json", json_, "print the timeline as JSON");
    // Test hook, hidden from --help: SIGSTOP at "after-fence" or "before-flip".
    sub->add_option("--pause-at", o_.pause_at)->group("");
  }

  cutover::CutoverOptions o_;
  ConnectionFlags conn_;
  QueueFlags queue_;
  std::string max_lag_ = "1s";
  std::string timeout_ = "60s";
  std::string flip_timeout_ = "10s";
  std::vector<std::string> pgbouncer_tables_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCutoverCommand(GlobalOptions* g) {
  return std::make_unique<CutoverCommand>(
      g, "cutover", "fence writers, drain, copy sequences and flip writers to the new cluster");
}

}  // namespace pgbaton::tools
