#include "tools/initial_copy/source_load.h"

#include <fmt/format.h>

#include <cmath>

#include "common/log.h"
#include "tools/config/duration.h"

namespace pgbaton::tools::copy {
namespace {

constexpr const char* kFlag = "--source-load-limit";
constexpr const char* kExample = "e.g. --source-load-limit active-sessions=32,standby-lag=10s";

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(' ') - b + 1);
}

Status Usage(std::string message) {
  return Status::Error(ErrorCode::kUsage, fmt::format("{}: {}", kFlag, message),
                       std::string("the signals are active-sessions (a number of sessions) and "
                                   "standby-lag (a duration); ") +
                           kExample);
}

// The resume point of a limit: at or under 80% of it.
double ResumeAt(double limit) { return limit * kResumeFraction; }

std::string Seconds(double s) { return fmt::format("{:.1f} s", s); }

}  // namespace

Result<SourceLoadLimits> ParseSourceLoadLimits(const std::string& text) {
  SourceLoadLimits out;
  if (Trim(text).empty()) return out;
  bool seen_sessions = false, seen_lag = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    size_t eq = item.find('=');
    if (item.empty() || eq == std::string::npos) {
      return Usage(fmt::format("\"{}\" is not SIGNAL=LIMIT", item));
    }
    std::string key = Trim(item.substr(0, eq));
    std::string value = Trim(item.substr(eq + 1));
    if (key == "active-sessions") {
      if (seen_sessions) return Usage("active-sessions is given twice");
      seen_sessions = true;
      size_t used = 0;
      long long n = 0;
      try {
        n = std::stoll(value, &used);
      } catch (...) {
        used = 0;
      }
      if (value.empty() || used != value.size() || n < 1 || value[0] == '+' || value[0] == ' ') {
        return Usage(fmt::format(
            "active-sessions must be a whole number of sessions, at least 1, not \"{}\"", value));
      }
      out.active_sessions = n;
    } else if (key == "standby-lag") {
      if (seen_lag) return Usage("standby-lag is given twice");
      seen_lag = true;
      std::optional<std::chrono::milliseconds> d = ParseDuration(value);
      if (!d || d->count() <= 0) {
        return Usage(fmt::format(
            "standby-lag must be a duration above 0 like 10s, 500ms or 2m, not \"{}\"", value));
      }
      out.standby_lag = *d;
    } else {
      return Usage(fmt::format("unknown signal \"{}\"", key));
    }
  }
  return out;
}

bool LoadGate::Update(const LoadSample& s) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    const bool was = sessions_over_ || lag_over_;
    last_ = s;
    if (limits_.active_sessions > 0 && s.active_sessions) {
      const auto n = static_cast<double>(*s.active_sessions);
      const auto limit = static_cast<double>(limits_.active_sessions);
      if (n > limit) sessions_over_ = true;
      if (n <= ResumeAt(limit)) sessions_over_ = false;
    }
    if (limits_.standby_lag.count() > 0 && s.standby_lag_seconds) {
      const double limit = static_cast<double>(limits_.standby_lag.count()) / 1000.0;
      if (*s.standby_lag_seconds > limit) lag_over_ = true;
      if (*s.standby_lag_seconds <= ResumeAt(limit)) lag_over_ = false;
    }
    changed = was != (sessions_over_ || lag_over_);
  }
  if (changed) cv_.notify_all();
  return changed;
}

bool LoadGate::Open() {
  bool was;
  {
    std::lock_guard<std::mutex> l(mu_);
    was = sessions_over_ || lag_over_;
    sessions_over_ = lag_over_ = false;
  }
  cv_.notify_all();
  return was;
}

bool LoadGate::paused() const {
  std::lock_guard<std::mutex> l(mu_);
  return sessions_over_ || lag_over_;
}

std::string LoadGate::ReasonLocked() const {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (sessions_over_ && last_.active_sessions) {
    const int64_t n = *last_.active_sessions;
    if (n > limits_.active_sessions) {
      add(fmt::format("active sessions {} > {}", n, limits_.active_sessions));
    } else {
      add(fmt::format("active sessions {}, resuming at {} or fewer", n,
                      static_cast<int64_t>(
                          std::floor(ResumeAt(static_cast<double>(limits_.active_sessions))))));
    }
  }
  if (lag_over_ && last_.standby_lag_seconds) {
    const double lag = *last_.standby_lag_seconds;
    const double limit = static_cast<double>(limits_.standby_lag.count()) / 1000.0;
    if (lag > limit) {
      add(fmt::format("standby replay lag {} > {}", Seconds(lag), Seconds(limit)));
    } else {
      add(fmt::format("standby replay lag {}, resuming at {} or less", Seconds(lag),
                      Seconds(ResumeAt(limit))));
    }
  }
  return out;
}

std::string LoadGate::reason() const {
  std::lock_guard<std::mutex> l(mu_);
  return ReasonLocked();
}

std::vector<std::string> LoadGate::reason_labels() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  if (sessions_over_) out.push_back("active_sessions");
  if (lag_over_) out.push_back("standby_lag");
  return out;
}

std::chrono::nanoseconds LoadGate::WaitWhileClosed(const std::atomic<bool>* stop) {
  std::unique_lock<std::mutex> l(mu_);
  if (!sessions_over_ && !lag_over_) return std::chrono::nanoseconds(0);
  const auto start = std::chrono::steady_clock::now();
  while ((sessions_over_ || lag_over_) && !(stop && stop->load())) {
    cv_.wait_for(l, std::chrono::milliseconds(100));
  }
  return std::chrono::steady_clock::now() - start;
}

void SessionSet::Add(int pid) {
  std::lock_guard<std::mutex> l(mu_);
  pids_.insert(pid);
}

void SessionSet::Remove(int pid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pids_.find(pid);
  if (it != pids_.end()) pids_.erase(it);
}

std::vector<int> SessionSet::Pids() const {
  std::lock_guard<std::mutex> l(mu_);
  return {pids_.begin(), pids_.end()};
}

Result<LoadSample> ReadSourceLoad(PgConn& conn, const SourceLoadLimits& limits,
                                  const std::vector<int>& own_pids) {
  std::string pids = "{";
  for (size_t i = 0; i < own_pids.size(); ++i) pids += (i ? "," : "") + std::to_string(own_pids[i]);
  pids += "}";
  // Active sessions: client backends only (backend_type, 10+), so walsenders (migrate's own
  // decoder among them), autovacuum, parallel and other background workers are left out; so are
  // this session and the copy's own. Standby lag: replay_lag (10+) of physical walsenders only;
  // a logical walsender is connected to a database (datid), a physical one is not. A standby that
  // has replayed everything and is idle shows NULL: no lag.
  PGB_ASSIGN_OR_RETURN(
      PgResult r,
      conn.ExecParams(
          "SELECT (SELECT count(*) FROM pg_stat_activity"
          "         WHERE state = 'active' AND backend_type = 'client backend'"
          "           AND pid <> pg_backend_pid() AND pid <> ALL($1::int[])),"
          "       (SELECT COALESCE(EXTRACT(epoch FROM max(r.replay_lag)), 0)"
          "          FROM pg_stat_replication r JOIN pg_stat_activity a ON a.pid = r.pid"
          "         WHERE a.datid IS NULL)",
          {pids}));
  LoadSample s;
  if (limits.active_sessions > 0) s.active_sessions = r.GetInt(0, 0);
  if (limits.standby_lag.count() > 0) s.standby_lag_seconds = std::stod(r.GetString(0, 1));
  return s;
}

SourceLoadMonitor::SourceLoadMonitor(SourceLoadMonitorOptions options, LoadGate* gate)
    : options_(std::move(options)), gate_(gate) {
  last_read_ = std::chrono::steady_clock::now();
  Step();
  thread_ = std::thread([this] { Loop(); });
}

SourceLoadMonitor::~SourceLoadMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void SourceLoadMonitor::Loop() {
  using Clock = std::chrono::steady_clock;
  while (!stop_) {
    const auto until = Clock::now() + options_.interval;
    while (!stop_ && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!stop_) Step();
  }
}

void SourceLoadMonitor::Step() {
  using Clock = std::chrono::steady_clock;
  auto notify = [&] {
    const bool paused = gate_->paused();
    const std::string reason = gate_->reason();
    if (reason == last_reason_) return;
    const bool was_paused = !last_reason_.empty();
    last_reason_ = reason;
    const std::vector<std::string> labels = gate_->reason_labels();
    if (paused && !was_paused) {
      LogInfo(fmt::format("copy paused: source load ({})", reason),
              {{"signal", labels.empty() ? "" : labels.front()}});
    } else if (!paused && was_paused && !gave_up_) {
      LogInfo("copy resumed: the source's load is back under --source-load-limit");
    }
    if (options_.on_change) options_.on_change(paused, reason, labels);
  };
  Status err;
  if (!conn_) {
    ConnectOptions co;
    co.label = "source";
    co.application_name = "pgbaton copy monitor";
    auto c = PgConn::Connect(options_.conninfo, co);
    if (c.ok()) {
      conn_.emplace(std::move(*c));
      // Without pg_read_all_stats (pg_monitor) a role sees the state of its own sessions only,
      // and no standby's lag: the limits would count too little.
      auto can = conn_->QueryValue(
          "SELECT pg_has_role('pg_read_all_stats', 'USAGE') OR "
          "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)");
      if (can.ok() && *can != "t") {
        LogWarning(
            "--source-load-limit: the source role may not see other roles' sessions or the "
            "standbys' lag, so it counts only its own",
            {{"hint", "GRANT pg_monitor TO the role pgbaton connects as"}});
      }
    } else {
      err = c.status();
    }
  }
  if (conn_) {
    std::vector<int> own =
        options_.own_sessions ? options_.own_sessions->Pids() : std::vector<int>{};
    auto s = ReadSourceLoad(*conn_, options_.limits, own);
    if (s.ok()) {
      if (failing_) LogInfo("--source-load-limit: the source's load can be read again");
      failing_ = gave_up_ = false;
      last_read_ = Clock::now();
      gate_->Update(*s);
      notify();
      return;
    }
    err = s.status();
    conn_.reset();
  }
  if (!failing_) {
    LogWarning("--source-load-limit: cannot read the source's load; trying again every interval",
               {{"error", err.message()},
                {"opens_after_s", static_cast<int64_t>(options_.give_up_after.count() / 1000)}});
    failing_ = true;
  }
  if (!gave_up_ && Clock::now() - last_read_ >= options_.give_up_after) {
    gave_up_ = true;
    if (gate_->Open()) {
      LogWarning(
          "--source-load-limit: the source's load could not be read for too long; the copy "
          "goes on unpaused until it can be read again",
          {{"unreadable_s", static_cast<int64_t>(options_.give_up_after.count() / 1000)}});
    }
    notify();
  }
}

}  // namespace pgbaton::tools::copy
