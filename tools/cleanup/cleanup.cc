#include "tools/cleanup/cleanup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "applier/progress.h"
#include "catalog/source_catalog.h"

namespace pgbaton::tools::cleanup {

namespace fs = std::filesystem;

namespace {

// The writer's lock file in a RocksDB queue directory (kLockFile in queue/rocksdb_keys.h).
constexpr const char* kQueueLockFile = "pgbaton.lock";

// Takes the queue writer's lock without waiting; -1 with ok when there is no lock file.
Result<int> LockQueueDir(const std::string& dir) {
  std::string path = (fs::path(dir) / kQueueLockFile).string();
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    return Status::Error(ErrorCode::kIo, fmt::format("queue \"{}\": cannot open {}: {}", dir, path,
                                                     std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && std::isspace(static_cast<unsigned char>(pid.back()))) pid.pop_back();
    return Status::Error(ErrorCode::kQueueLocked,
                         fmt::format("queue \"{}\" is in use by a writer (pid {})", dir, pid),
                         "stop the pgbaton process using the queue, then run cleanup again");
  }
  return fd;
}

}  // namespace

bool LooksLikeQueue(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / "CURRENT", ec) ||
         fs::exists(fs::path(dir) / "QUEUE_FORMAT", ec);
}

Status PrepareCleanupSession(PgConn* conn) {
  PGB_RETURN_IF_ERROR(conn->Run("SET default_transaction_read_only = off"));
  PGB_ASSIGN_OR_RETURN(std::string recovery,
                       conn->QueryValue("SELECT pg_catalog.pg_is_in_recovery()"));
  if (recovery == "t") {
    return Status::Error(ErrorCode::kServerConfig,
                         fmt::format("{} ({}) is a standby: cleanup cannot drop anything there",
                                     conn->label(), conn->description()),
                         "point --" + conn->label() + " at the primary");
  }
  return Status::Ok();
}

Status CheckSlotNotActive(PgConn* source, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(
      PgResult r,
      source->ExecParams("SELECT active, active_pid FROM pg_catalog.pg_replication_slots "
                         "WHERE slot_name = $1",
                         {name}));
  if (r.rows() > 0 && r.GetBool(0, 0)) {
    return Status::Error(
        ErrorCode::kSlotInUse,
        fmt::format("slot \"{}\" on source is active in process {}", name,
                    r.IsNull(0, 1) ? "unknown" : r.GetString(0, 1)),
        "stop the pgbaton process (or other client) streaming from it, then run cleanup again");
  }
  return Status::Ok();
}

Result<std::string> DropSlot(PgConn* source, const std::string& name) {
  PGB_RETURN_IF_ERROR(CheckSlotNotActive(source, name));
  PGB_ASSIGN_OR_RETURN(
      PgResult r, source->ExecParams("SELECT pg_catalog.pg_drop_replication_slot(slot_name) "
                                     "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                                     {name}));
  if (r.rows() == 0) return fmt::format("slot \"{}\" on source: already gone", name);
  return fmt::format("slot \"{}\" on source: dropped", name);
}

Result<std::string> DropPublication(PgConn* source, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(bool exists, catalog::PublicationExists(*source, name));
  if (!exists) return fmt::format("publication \"{}\" on source: already gone", name);
  PGB_RETURN_IF_ERROR(catalog::DropPublication(*source, name));
  return fmt::format("publication \"{}\" on source: dropped", name);
}

Result<std::string> DropOrigins(PgConn* target, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(
      PgResult r,
      target->ExecParams("SELECT roname FROM pg_catalog.pg_replication_origin WHERE roname = $1 "
                         "OR starts_with(roname, $1 || '-') ORDER BY roname",
                         {name}));
  std::vector<std::string> dropped;
  for (int i = 0; i < r.rows(); ++i) {
    std::string origin = r.GetString(i, 0);
    if (!applier::IsProgressName(name, origin)) continue;
    Status s = target
                   ->ExecParams(
                       "SELECT pg_catalog.pg_replication_origin_drop(roname) FROM "
                       "pg_catalog.pg_replication_origin WHERE roname = $1",
                       {origin})
                   .status();
    if (!s.ok()) {
      if (s.message().find("is already active") != std::string::npos ||
          s.message().find("in use") != std::string::npos) {
        return Status::Error(ErrorCode::kSlotInUse,
                             fmt::format("replication origin \"{}\" on target is in use by an "
                                         "apply session",
                                         origin),
                             "stop the pgbaton applier of this migration, then run cleanup again");
      }
      return s.WithContext(fmt::format("replication origin \"{}\" on target", origin));
    }
    dropped.push_back(origin);
  }
  if (dropped.empty()) {
    return fmt::format("replication origin \"{}\" on target: already gone", name);
  }
  std::string list;
  for (const auto& d : dropped) list += (list.empty() ? "\"" : ", \"") + d + "\"";
  return fmt::format("replication origin{} {} on target: dropped", dropped.size() > 1 ? "s" : "",
                     list);
}

Result<std::string> DropPauseRequests(PgConn* target, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(
      std::string exists,
      target->QueryValue("SELECT to_regclass('pgbaton.pause_request') IS NOT NULL"));
  if (exists != "t") return std::string("table pgbaton.pause_request on target: not present");
  PGB_RETURN_IF_ERROR(
      target->ExecParams("DELETE FROM pgbaton.pause_request WHERE name = $1", {name}).status());
  PGB_ASSIGN_OR_RETURN(std::string others,
                       target->QueryValue("SELECT count(*) FROM pgbaton.pause_request"));
  if (others != "0") {
    return fmt::format("table pgbaton.pause_request on target: kept ({} other migration(s))",
                       others);
  }
  PGB_RETURN_IF_ERROR(target->Run("DROP TABLE pgbaton.pause_request"));
  return std::string("table pgbaton.pause_request on target: dropped");
}

Result<std::string> DropProgress(PgConn* target, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(std::string exists,
                       target->QueryValue("SELECT to_regclass('pgbaton.progress') IS NOT NULL"));
  if (exists != "t") return std::string("progress table pgbaton.progress on target: not present");
  PGB_ASSIGN_OR_RETURN(PgResult rows, target->Exec("SELECT name FROM pgbaton.progress"));
  std::vector<std::optional<std::string>> ours;
  int others = 0;
  for (int i = 0; i < rows.rows(); ++i) {
    std::string n = rows.GetString(i, 0);
    if (applier::IsProgressName(name, n)) {
      ours.emplace_back(n);
    } else {
      ++others;
    }
  }
  for (const auto& n : ours) {
    PGB_RETURN_IF_ERROR(
        target->ExecParams("DELETE FROM pgbaton.progress WHERE name = $1", {n}).status());
  }
  std::string out = fmt::format("progress rows of \"{}\" in pgbaton.progress on target: {}", name,
                                ours.empty() ? "already gone" : "deleted");
  if (others > 0) {
    return out + fmt::format(" (table kept: {} other migration{} use it)", others,
                             others == 1 ? "" : "s");
  }
  PGB_RETURN_IF_ERROR(target->Run("DROP TABLE pgbaton.progress"));
  out += "; table dropped";
  // The schema goes too, unless something else lives in it.
  PGB_ASSIGN_OR_RETURN(
      std::string left,
      target->QueryValue("SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace "
                         "n ON n.oid = c.relnamespace WHERE n.nspname = 'pgbaton'"));
  if (left == "0") {
    Status s = target->Run("DROP SCHEMA IF EXISTS pgbaton RESTRICT");
    out += s.ok() ? "; schema pgbaton dropped" : "; schema pgbaton kept (not empty)";
  } else {
    out += "; schema pgbaton kept (it holds other objects)";
  }
  return out;
}

Result<std::string> DropSentinel(PgConn* conn, bool is_source) {
  const std::string& side = conn->label();
  PGB_ASSIGN_OR_RETURN(
      std::string exists,
      conn->QueryValue("SELECT to_regclass('pgbaton.cutover_sentinel') IS NOT NULL"));
  if (exists != "t") {
    return fmt::format("table pgbaton.cutover_sentinel on {}: not present", side);
  }
  const char* in_use_sql =
      is_source
          ? "SELECT count(*) FROM pg_catalog.pg_publication p WHERE p.puballtables OR EXISTS "
            "(SELECT 1 FROM pg_catalog.pg_publication_tables t WHERE t.pubname = p.pubname AND "
            "t.schemaname = 'pgbaton' AND t.tablename = 'cutover_sentinel')"
          : "SELECT (SELECT count(*) FROM pg_catalog.pg_replication_origin) + "
            "(to_regclass('pgbaton.progress') IS NOT NULL)::int";
  PGB_ASSIGN_OR_RETURN(std::string users, conn->QueryValue(in_use_sql));
  if (users != "0") {
    return fmt::format("table pgbaton.cutover_sentinel on {}: kept (another migration may use it)",
                       side);
  }
  PGB_RETURN_IF_ERROR(conn->Run("DROP TABLE pgbaton.cutover_sentinel"));
  std::string out = fmt::format("table pgbaton.cutover_sentinel on {}: dropped", side);
  PGB_ASSIGN_OR_RETURN(
      std::string left,
      conn->QueryValue("SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace "
                       "n ON n.oid = c.relnamespace WHERE n.nspname = 'pgbaton'"));
  if (left == "0" && conn->Run("DROP SCHEMA IF EXISTS pgbaton RESTRICT").ok()) {
    out += "; schema pgbaton dropped";
  }
  return out;
}

Status CheckQueueRemovable(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::Ok();
  if (!fs::is_directory(dir, ec)) {
    return Status::Error(ErrorCode::kQueueMismatch,
                         fmt::format("queue \"{}\" is not a directory: not removing it", dir),
                         "check --queue-dir");
  }
  if (fs::is_empty(dir, ec)) return Status::Ok();
  if (!LooksLikeQueue(dir)) {
    return Status::Error(ErrorCode::kQueueMismatch,
                         fmt::format("directory \"{}\" does not look like a pgbaton queue (no "
                                     "CURRENT or QUEUE_FORMAT file): not removing it",
                                     dir),
                         "check --queue-dir; cleanup only removes queue directories");
  }
  PGB_ASSIGN_OR_RETURN(int fd, LockQueueDir(dir));
  if (fd >= 0) close(fd);
  return Status::Ok();
}

Result<std::string> RemoveQueueDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return fmt::format("queue \"{}\": already gone", dir);
  PGB_RETURN_IF_ERROR(CheckQueueRemovable(dir));
  int fd = -1;
  if (!fs::is_empty(dir, ec)) {
    // Hold the writer's lock while removing, so no writer opens the queue meanwhile.
    PGB_ASSIGN_OR_RETURN(fd, LockQueueDir(dir));
  }
  fs::remove_all(dir, ec);
  if (fd >= 0) close(fd);
  if (ec) {
    return Status::Error(ErrorCode::kIo,
                         fmt::format("queue \"{}\": cannot remove: {}", dir, ec.message()));
  }
  return fmt::format("queue \"{}\": removed", dir);
}

}  // namespace pgbaton::tools::cleanup
