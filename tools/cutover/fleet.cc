#include "tools/cutover/fleet.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/sql_ident.h"
#include "tools/cutover/pgbouncer_ini.h"
#include "tools/cutover/strategy_support.h"

namespace pgbaton::tools::cutover {

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(0..n-1), each on a thread of its own (inline for one member), and joins them all.
void Parallel(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 1) {
    fn(0);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) threads.emplace_back(fn, i);
  for (auto& t : threads) t.join();
}

// Where a PgBouncer entry points: what the flip writes and SHOW DATABASES reads back.
struct Where {
  std::string host, port, dbname;
  std::string ToString() const { return fmt::format("{}:{}/{}", host, port, dbname); }
};

struct Member {
  PgBouncerMember spec;
  PoolerMember report;
  std::optional<PgConn> admin;
  bool pause_sent = false;             // PAUSE was sent: the undo must RESUME
  Where before;                        // where it pointed at the check (the old cluster)
  std::optional<std::string> old_ini;  // the ini before the flip first changed it
  bool touched = false;                // the flip changed, or may have changed, its configuration
  bool on_new = false;                 // SHOW DATABASES showed it pointing at the new cluster
};

// A failure that retrying cannot fix (the member lost its fence): the flip gives up at once.
constexpr const char* kLostFence = "is no longer paused";

class PgBouncerFleet : public Fence {
 public:
  PgBouncerFleet(const std::vector<PgBouncerMember>& members, std::string db,
                 const StrategyContext& ctx)
      : db_(std::move(db)), ctx_(ctx) {
    for (size_t i = 0; i < members.size(); ++i) {
      Member m;
      m.spec = members[i];
      m.report.name = fmt::format("pgbouncer {} ({})", i + 1, DescribeConninfo(m.spec.admin));
      m.report.database = db_;
      if (!m.spec.ini.empty()) m.report.flip = "ini " + m.spec.ini;
      if (!m.spec.flip_cmd.empty()) m.report.flip = "command " + m.spec.flip_cmd;
      members_.push_back(std::move(m));
    }
  }

  std::string Describe() const override {
    if (members_.size() == 1) {
      return fmt::format("PAUSE pgbouncer database \"{}\" ({})", db_,
                         DescribeConninfo(members_[0].spec.admin));
    }
    std::string list;
    for (const auto& m : members_) {
      list += (list.empty() ? "" : ", ") + DescribeConninfo(m.spec.admin);
    }
    return fmt::format("PAUSE pgbouncer database \"{}\" on {} pgbouncers ({})", db_,
                       members_.size(), list);
  }
  std::string Kind() const override { return "pgbouncer"; }
  bool Undone() const override {
    for (const auto& m : members_) {
      if (m.pause_sent || m.touched || m.on_new) return false;
    }
    return true;
  }
  std::vector<PoolerMember> Members() const override {
    std::vector<PoolerMember> out;
    for (const auto& m : members_) out.push_back(m.report);
    return out;
  }

  // Every member answers, lists the database and has it not paused; records where it points.
  Status Check(PgConn&) override {
    std::vector<Status> st(members_.size(), Status::Ok());
    Parallel(members_.size(), [&](size_t i) { st[i] = CheckMember(members_[i]); });
    return First(st);
  }

  Status Apply(PgConn&) override {
    std::atomic<bool> cancel{false};
    std::vector<Status> st(members_.size(), Status::Ok());
    Parallel(members_.size(), [&](size_t i) {
      Member& m = members_[i];
      Status s = EnsureConnected(m);
      if (s.ok()) {
        m.pause_sent = true;  // from here on, the undo must RESUME (even a PAUSE still waiting)
        s = AdminCommand(*m.admin, "PAUSE " + QuoteIdent(db_), ctx_.timeout, &cancel);
      }
      if (s.ok()) {
        m.report.state = "paused";
      } else {
        cancel = true;    // the fence cannot be complete: stop waiting for the others
        m.admin.reset();  // the console may still be busy with PAUSE: RESUME from a fresh one
        m.report.state = "failed";
        m.report.error = s.message();
      }
      st[i] = s;
    });
    // The member that failed first is the cause; the others were cancelled because of it.
    size_t cause = members_.size();
    for (size_t i = 0; i < st.size() && cause == members_.size(); ++i) {
      if (!st[i].ok() && st[i].message().find("cancelled") == std::string::npos) cause = i;
    }
    if (cause == members_.size()) {
      for (size_t i = 0; i < st.size() && cause == members_.size(); ++i) {
        if (!st[i].ok()) cause = i;
      }
    }
    if (cause == members_.size()) return Status::Ok();
    Status u = UndoAll();
    std::string what = members_.size() == 1
                           ? fmt::format("PAUSE of pgbouncer database \"{}\"", db_)
                           : fmt::format("PAUSE of pgbouncer database \"{}\" on {}", db_,
                                         members_[cause].report.name);
    Status failed = FenceFailed(st[cause], what);
    if (u.ok()) return failed;
    return Status::Error(
        failed.code(), fmt::format("{}; and undoing it failed: {}", failed.message(), u.message()),
        fmt::format("RESUME {} by hand on the admin console of each pgbouncer the "
                    "report does not show resumed",
                    db_));
  }

  // Points every member that the flip touched back at the old cluster, then RESUMEs every member
  // that points there. A member that cannot be pointed back stays paused (its clients wait; none
  // writes to the new cluster while the others write to the old one).
  Status Undo(PgConn&) override { return UndoAll(); }

  Status UndoAll() {
    auto deadline = Clock::now() + ctx_.flip_timeout;
    std::vector<Status> st(members_.size(), Status::Ok());
    Parallel(members_.size(), [&](size_t i) {
      Member& m = members_[i];
      Status s = Status::Ok();
      if (m.touched || m.on_new) {
        s = Retry(deadline, [&] { return Point(m, /*to_new=*/false); });
        if (!s.ok()) {
          m.report.state = "failed";
          m.report.error = s.message();
          st[i] = Status::Error(
              ErrorCode::kFlipFailed,
              fmt::format("{} could not be pointed back at the old cluster ({}) and stays "
                          "paused: {}",
                          m.report.name, m.before.ToString(), s.message()));
          return;
        }
      }
      if (!m.pause_sent) return;
      s = Retry(deadline, [&] { return Resume(m); });
      if (s.ok()) {
        m.report.state = "resumed";
        m.report.points_at = "old";
      } else {
        m.report.state = "failed";
        m.report.error = s.message();
        st[i] = Status::Error(ErrorCode::kFenceFailed,
                              fmt::format("{}: RESUME failed: {}", m.report.name, s.message()));
      }
    });
    return First(st);
  }

  // --- the flip (FleetFlip) ---

  Status CheckFlipMethods() const {
    for (const auto& m : members_) {
      if (!m.spec.ini.empty() && !m.spec.flip_cmd.empty()) {
        return Status::Error(ErrorCode::kUsage,
                             fmt::format("{} has both an ini and a flip command", m.report.name),
                             "give each pgbouncer one way to flip: --pgbouncer-ini or "
                             "--pgbouncer-flip-cmd");
      }
      if (m.spec.ini.empty() && m.spec.flip_cmd.empty()) {
        if (members_.size() == 1) {
          return Status::Error(ErrorCode::kUsage, "--flip pgbouncer needs --pgbouncer-ini PATH",
                               "the configuration file whose [databases] entry is rewritten (or "
                               "--pgbouncer-flip-cmd CMD)");
        }
        return Status::Error(
            ErrorCode::kUsage,
            fmt::format("--flip pgbouncer: {} has no --pgbouncer-ini and no --pgbouncer-flip-cmd",
                        m.report.name),
            "give --pgbouncer-ini (or --pgbouncer-flip-cmd) once per --fence pgbouncer:, in the "
            "same order (\"\" for a member that uses the other), or list the members as "
            "[[cutover.pgbouncer]] in the config file");
      }
    }
    return Status::Ok();
  }

  std::string DescribeFlip() const {
    if (members_.size() == 1) {
      const Member& m = members_[0];
      if (!m.spec.ini.empty()) {
        return fmt::format("point \"{}\" in {} at the new cluster, RELOAD, RESUME", db_,
                           m.spec.ini);
      }
      return fmt::format("point \"{}\" at the new cluster with the flip command, RELOAD, RESUME",
                         db_);
    }
    return fmt::format(
        "point \"{}\" on all {} pgbouncers at the new cluster (ini + RELOAD or flip command), "
        "then RESUME them all; a member failing for --flip-timeout flips every one back",
        db_, members_.size());
  }

  Status CheckFlip() {
    PGB_ASSIGN_OR_RETURN(auto parts, ConninfoParts(ctx_.target_conninfo));
    if (!parts.count("host") || !parts.count("port")) {
      return Status::Error(ErrorCode::kUsage,
                           "--flip pgbouncer: the --target conninfo must give host and port",
                           "PgBouncer's entry is rewritten with the target's host, port and "
                           "dbname");
    }
    for (const auto& m : members_) {
      if (!m.spec.ini.empty()) {
        PGB_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(m.spec.ini));
        PGB_RETURN_IF_ERROR(FindBouncerEntry(text, db_).status().WithContext(m.report.name));
        if (access(m.spec.ini.c_str(), W_OK) != 0) {
          return Status::Error(ErrorCode::kPermission,
                               fmt::format("cannot write \"{}\"", m.spec.ini),
                               "run the cutover as a user that may edit pgbouncer.ini");
        }
      } else if (access("/bin/sh", X_OK) != 0) {
        return Status::Error(ErrorCode::kNotFound,
                             "/bin/sh is missing: cannot run the pgbouncer flip command");
      }
    }
    return Status::Ok();
  }

  Status Flip(PgConn& target) {
    // The new cluster must answer before clients are sent there.
    Status s = target.Run("select 1");
    if (!s.ok()) return FlipFailed(s, "new cluster unreachable at the flip");
    auto deadline = Clock::now() + ctx_.flip_timeout;
    std::atomic<bool> give_up{false};
    Parallel(members_.size(), [&](size_t i) {
      Member& m = members_[i];
      while (true) {
        m.report.flip_attempts++;
        Status p = Point(m, /*to_new=*/true);
        if (p.ok()) {
          m.report.state = "flipped";
          m.report.error.clear();
          return;
        }
        m.report.error = p.message();
        if (p.message().find(kLostFence) != std::string::npos) give_up = true;
        if (give_up || Clock::now() + std::chrono::milliseconds(200) > deadline) {
          m.report.state = "failed";
          give_up = true;  // the others stop retrying: everything goes back
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
    for (const Member& m : members_) {
      if (m.on_new) continue;
      return Status::Error(
          ErrorCode::kFlipFailed,
          fmt::format("{} could not be pointed at the new cluster ({} attempts in {} ms): {}; "
                      "every pgbouncer goes back to the old cluster",
                      m.report.name, m.report.flip_attempts, ctx_.flip_timeout.count(),
                      m.report.error),
          "fix that pgbouncer (or leave it out of the fleet) and run the cutover again; raise "
          "--flip-timeout if it was just slow");
    }
    // Every member points at the new cluster: only now may any of them RESUME, and only if the
    // new cluster still answers (else everything goes back while nobody has written there).
    s = target.Run("select 1");
    if (!s.ok()) {
      return FlipFailed(s, "new cluster unreachable after pointing every pgbouncer at it");
    }
    auto resume_deadline = std::max(deadline, Clock::now() + std::chrono::seconds(2));
    Parallel(members_.size(), [&](size_t i) {
      Member& m = members_[i];
      Status r = Retry(resume_deadline, [&] { return Resume(m); });
      if (r.ok()) {
        m.report.state = "resumed";
        m.pause_sent = false;
      } else {
        m.report.state = "failed";
        m.report.error = "pointed at the new cluster, RESUME failed: " + r.message();
      }
    });
    return Status::Ok();
  }

 private:
  Status EnsureConnected(Member& m) {
    if (m.admin && m.admin->connected()) return Status::Ok();
    m.admin.reset();
    auto c = ConnectAdmin(m.spec.admin);
    if (!c.ok()) return c.status().WithContext(m.report.name);
    m.admin.emplace(std::move(*c));
    return Status::Ok();
  }

  Status CheckMember(Member& m) {
    PGB_RETURN_IF_ERROR(EnsureConnected(m));
    PGB_ASSIGN_OR_RETURN(BouncerEntry e, ShowDatabase(*m.admin, db_));
    if (!e.found) {
      return Status::Error(
          ErrorCode::kNotFound,
          fmt::format("pgbouncer ({}) has no database \"{}\"", m.admin->description(), db_),
          "pass --pgbouncer-db with the name clients use");
    }
    if (e.paused) {
      return Status::Error(
          ErrorCode::kFenceFailed,
          fmt::format("pgbouncer database \"{}\" is already paused on {}", db_, m.report.name),
          fmt::format("RESUME {} on the admin console if no cutover is running", db_));
    }
    m.before = {e.host, e.port, e.database};
    return Status::Ok();
  }

  Status Resume(Member& m) {
    Status s = EnsureConnected(m);
    if (s.ok()) s = AdminCommand(*m.admin, "RESUME " + QuoteIdent(db_), ctx_.timeout);
    if (!s.ok() && s.message().find("not paused") == std::string::npos) {
      m.admin.reset();
      return s;
    }
    m.pause_sent = false;
    return Status::Ok();
  }

  // Points member `m` at the new cluster (`to_new`) or back at where it pointed before, and
  // checks with SHOW DATABASES that it does. Before pointing at the new cluster, checks that the
  // member is still paused (a restarted PgBouncer is not, and its clients may have written to
  // the old cluster after the drain).
  Status Point(Member& m, bool to_new) {
    Where want = m.before;
    if (to_new) {
      PGB_ASSIGN_OR_RETURN(auto parts, ConninfoParts(ctx_.target_conninfo));
      want = {parts["host"], parts["port"], parts.count("dbname") ? parts["dbname"] : ""};
    }
    PGB_RETURN_IF_ERROR(EnsureConnected(m));
    if (to_new && !m.touched) {
      PGB_ASSIGN_OR_RETURN(BouncerEntry e, ShowDatabase(*m.admin, db_));
      if (!e.paused) {
        return Status::Error(ErrorCode::kFlipFailed,
                             fmt::format("{} {} (restarted?): its clients may have written to "
                                         "the old cluster after the drain",
                                         m.report.name, kLostFence));
      }
    }
    Status change = Status::Ok();
    if (!m.spec.ini.empty()) {
      PGB_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(m.spec.ini));
      if (!m.old_ini) m.old_ini = text;
      std::string next = *m.old_ini;
      if (to_new) {
        std::map<std::string, std::string> set = {{"host", want.host}, {"port", want.port}};
        if (!want.dbname.empty()) set["dbname"] = want.dbname;
        PGB_ASSIGN_OR_RETURN(next, RewriteBouncerEntry(*m.old_ini, db_, set));
      }
      m.touched = true;
      m.report.points_at = "unknown";
      PGB_RETURN_IF_ERROR(WriteFileAtomically(m.spec.ini, next));
    } else if (!m.spec.flip_cmd.empty()) {
      m.touched = true;
      m.report.points_at = "unknown";
      std::vector<std::string> env = {std::string("PGBATON_FLIP_TO=") + (to_new ? "new" : "old"),
                                      "PGBATON_FLIP_HOST=" + want.host,
                                      "PGBATON_FLIP_PORT=" + want.port,
                                      "PGBATON_FLIP_DBNAME=" + want.dbname,
                                      "PGBATON_PGBOUNCER_DB=" + db_,
                                      "PGBATON_CUTOVER_ID=" + ctx_.cutover_id};
      change = RunShell(m.spec.flip_cmd, env, ctx_.timeout,
                        fmt::format("flip command of {}", m.report.name));
      // Pointing back goes on to RELOAD and look: the command may have failed after its change.
      if (to_new && !change.ok()) return change;
    }
    // From here until SHOW DATABASES reads the entry back, where the member points is not known.
    m.report.points_at = "unknown";
    PGB_RETURN_IF_ERROR(AdminCommand(*m.admin, "RELOAD", ctx_.timeout));
    PGB_ASSIGN_OR_RETURN(BouncerEntry e, ShowDatabase(*m.admin, db_));
    bool there = e.found && e.port == want.port &&
                 (e.host.empty() || want.host.empty() || e.host == want.host);
    if (!there) {
      std::string err =
          fmt::format("{} points \"{}\" at {} after RELOAD, not at {}", m.report.name, db_,
                      e.found ? e.host + ":" + e.port : "nothing", want.host + ":" + want.port);
      if (!change.ok()) err += "; " + change.message();
      return Status::Error(ErrorCode::kFlipFailed, err,
                           m.spec.ini.empty()
                               ? "the flip command must point the entry at PGBATON_FLIP_HOST "
                                 "and PGBATON_FLIP_PORT"
                               : "check that --pgbouncer-ini is the file this PgBouncer reads");
    }
    if (!change.ok()) LogWarning("pgbouncer flip command failed", {{"error", change.message()}});
    m.on_new = to_new;
    m.report.points_at = to_new ? "new" : "old";
    if (!to_new) m.touched = false;
    return Status::Ok();
  }

  // Calls `fn` until it succeeds or `deadline` passes (every 200 ms); its last error.
  static Status Retry(Clock::time_point deadline, const std::function<Status()>& fn) {
    while (true) {
      Status s = fn();
      if (s.ok() || Clock::now() + std::chrono::milliseconds(200) > deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // The first error, with the others' messages added when several members failed.
  static Status First(const std::vector<Status>& st) {
    Status first = Status::Ok();
    int more = 0;
    std::string others;
    for (const Status& s : st) {
      if (s.ok()) continue;
      if (first.ok()) {
        first = s;
      } else {
        more++;
        others += "; " + s.message();
      }
    }
    if (more == 0) return first;
    return Status::Error(first.code(), first.message() + others, first.hint());
  }

  std::vector<Member> members_;
  std::string db_;
  StrategyContext ctx_;
};

class FleetFlip : public Flip {
 public:
  explicit FleetFlip(PgBouncerFleet* fleet) : fleet_(fleet) {}
  std::string Describe() const override { return fleet_->DescribeFlip(); }
  std::string Kind() const override { return "pgbouncer"; }
  Status Check(PgConn&, PgConn&) override { return fleet_->CheckFlip(); }
  Status Run(PgConn& target) override { return fleet_->Flip(target); }

 private:
  PgBouncerFleet* fleet_;
};

}  // namespace

Result<std::unique_ptr<Fence>> MakeFleet(const std::vector<PgBouncerMember>& members,
                                         const std::string& db, const StrategyContext& ctx) {
  if (members.empty()) {
    return Status::Error(ErrorCode::kUsage, "--fence pgbouncer: needs the admin conninfo",
                         "e.g. --fence 'pgbouncer:host=127.0.0.1 port=6432 dbname=pgbouncer'");
  }
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].admin.empty()) {
      return Status::Error(ErrorCode::kUsage,
                           fmt::format("pgbouncer {} of the fleet has no admin conninfo", i + 1),
                           "e.g. --fence 'pgbouncer:host=127.0.0.1 port=6432 dbname=pgbouncer', "
                           "or admin = \"...\" in [[cutover.pgbouncer]]");
    }
  }
  return std::unique_ptr<Fence>(std::make_unique<PgBouncerFleet>(members, db, ctx));
}

Result<std::unique_ptr<Flip>> MakeFleetFlip(Fence* fence) {
  auto* fleet = dynamic_cast<PgBouncerFleet*>(fence);
  if (fleet == nullptr) {
    return Status::Error(ErrorCode::kUsage, "--flip pgbouncer needs --fence pgbouncer:CONNINFO",
                         "the flip RESUMEs the database the fence PAUSEd");
  }
  PGB_RETURN_IF_ERROR(fleet->CheckFlipMethods());
  return std::unique_ptr<Flip>(std::make_unique<FleetFlip>(fleet));
}

Result<std::vector<PgBouncerMember>> AssembleMembers(
    const std::vector<std::string>& admins, const std::vector<std::string>& inis,
    const std::vector<std::string>& flip_cmds, const std::vector<PgBouncerMember>& config_members) {
  auto check = [&](const std::vector<std::string>& list, const char* flag) -> Status {
    if (list.empty() || list.size() == admins.size()) return Status::Ok();
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("{} is given {} times for {} --fence pgbouncer: members", flag, list.size(),
                    admins.size()),
        fmt::format("give {} once per --fence pgbouncer:, in the same order (\"\" for a member "
                    "that flips the other way), or list the members as [[cutover.pgbouncer]]",
                    flag));
  };
  PGB_RETURN_IF_ERROR(check(inis, "--pgbouncer-ini"));
  PGB_RETURN_IF_ERROR(check(flip_cmds, "--pgbouncer-flip-cmd"));
  std::vector<PgBouncerMember> out;
  for (size_t i = 0; i < admins.size(); ++i) {
    PgBouncerMember m;
    m.admin = admins[i];
    if (!inis.empty()) m.ini = inis[i];
    if (!flip_cmds.empty()) m.flip_cmd = flip_cmds[i];
    out.push_back(std::move(m));
  }
  out.insert(out.end(), config_members.begin(), config_members.end());
  return out;
}

Result<PgBouncerMember> ParseMemberJson(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Error(ErrorCode::kUsage, "[[cutover.pgbouncer]]: expected a table",
                         "e.g. [[cutover.pgbouncer]] admin = \"host=h port=6432 dbname=pgbouncer\" "
                         "ini = \"/etc/pgbouncer/pgbouncer.ini\"");
  }
  PgBouncerMember m;
  for (const auto& [k, v] : j.items()) {
    std::string* field = k == "admin"                           ? &m.admin
                         : k == "ini"                           ? &m.ini
                         : (k == "flip_cmd" || k == "flip-cmd") ? &m.flip_cmd
                                                                : nullptr;
    if (field == nullptr) {
      return Status::Error(ErrorCode::kUsage,
                           fmt::format("[[cutover.pgbouncer]]: unknown key \"{}\"", k),
                           "the keys are admin, ini and flip_cmd");
    }
    if (!v.is_string()) {
      return Status::Error(ErrorCode::kUsage,
                           fmt::format("[[cutover.pgbouncer]]: \"{}\" must be a string", k));
    }
    *field = v.get<std::string>();
  }
  return m;
}

}  // namespace pgbaton::tools::cutover
