#include "tools/common/identity.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "applier/applier.h"
#include "common/log.h"

namespace pgbaton::tools {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

// How long a slot may stay active before a starting stream gives up on it: a walsender whose
// client was just killed notices within moments; a live one stays.
constexpr auto kSlotIdleGrace = std::chrono::seconds(5);

constexpr const char* kTargetTable = "pgbaton.migration";

Result<PgConn> Connect(const std::string& conninfo, const char* label) {
  ConnectOptions co;
  co.label = label;
  co.application_name = "pgbaton check";
  return PgConn::Connect(conninfo, co);
}

std::string ToJson(const DatabaseIdentity& d) {
  Json j = {{"system_identifier", d.system_identifier},
            {"database", d.database},
            {"database_oid", d.database_oid}};
  return j.dump();
}

Result<DatabaseIdentity> FromJson(const std::string& key, const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("database") || !j.contains("database_oid")) {
    return Status::Error(ErrorCode::kQueueCorrupt,
                         fmt::format("queue metadata \"{}\" is not an identity record: {}", key,
                                     text.substr(0, 200)),
                         "restore the queue directory, or start over with `pgbaton copy`");
  }
  DatabaseIdentity d;
  d.system_identifier = j.value("system_identifier", "");
  d.database = j.value("database", "");
  d.database_oid = j.value("database_oid", "");
  return d;
}

// Says how `live` differs from `recorded` (which `where` holds), or "" when it does not.
std::string Difference(const DatabaseIdentity& recorded, const DatabaseIdentity& live,
                       const std::string& side, const std::string& where) {
  if (!recorded.system_identifier.empty() && !live.system_identifier.empty() &&
      recorded.system_identifier != live.system_identifier) {
    return fmt::format(
        "{} ({}) is another cluster than the one {} was made for: system identifier {}, "
        "recorded {} (database \"{}\")",
        side, live.description, where, live.system_identifier, recorded.system_identifier,
        recorded.database);
  }
  if (recorded.database_oid != live.database_oid) {
    if (recorded.database == live.database) {
      return fmt::format(
          "database \"{}\" on {} ({}) was dropped and re-created since {} recorded it: OID {}, "
          "recorded {}",
          live.database, side, live.description, where, live.database_oid, recorded.database_oid);
    }
    return fmt::format("{} ({}) is database \"{}\", but {} was made for database \"{}\"", side,
                       live.description, live.database, where, recorded.database);
  }
  return "";
}

std::string MismatchHint(const MigrationCheck& check, const std::string& side) {
  std::string queue = check.queue_dir.empty() ? "" : " --queue-dir " + check.queue_dir;
  return fmt::format(
      "if --{0} is wrong, pass the conninfo of the database this migration was made for; to "
      "start a new migration, use a new --queue-dir (or remove the old migration with "
      "`pgbaton cleanup{1}`) and copy into an empty database; nothing was changed",
      side, queue);
}

struct TargetRecord {
  DatabaseIdentity source;
  DatabaseIdentity target;
  std::string slot;
  std::string recorded_at;
};

Result<std::optional<TargetRecord>> ReadTargetRecord(PgConn& target, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(std::string exists,
                       target.QueryValue("select to_regclass('pgbaton.migration') is not null"));
  if (exists != "t") return std::optional<TargetRecord>();
  PGB_ASSIGN_OR_RETURN(
      PgResult r, target.ExecParams("select source_system_identifier, source_database, "
                                    "source_database_oid::text, slot, target_system_identifier, "
                                    "target_database, target_database_oid::text, recorded_at::text "
                                    "from pgbaton.migration where name = $1",
                                    {name}));
  if (r.rows() == 0) return std::optional<TargetRecord>();
  TargetRecord t;
  t.source.system_identifier = r.GetString(0, 0);
  t.source.database = r.GetString(0, 1);
  t.source.database_oid = r.GetString(0, 2);
  t.slot = r.GetString(0, 3);
  t.target.system_identifier = r.GetString(0, 4);
  t.target.database = r.GetString(0, 5);
  t.target.database_oid = r.GetString(0, 6);
  t.recorded_at = r.GetString(0, 7);
  return std::optional<TargetRecord>(std::move(t));
}

Status WriteTargetRecord(PgConn& target, const std::string& name, const DatabaseIdentity& source,
                         const DatabaseIdentity& live_target) {
  Status s = target.Run(
      "create schema if not exists pgbaton; create table if not exists pgbaton.migration ("
      "name text primary key, source_system_identifier text not null, source_database text not "
      "null, source_database_oid oid not null, slot text not null, target_system_identifier "
      "text not null, target_database text not null, target_database_oid oid not null, "
      "recorded_at timestamptz not null default now())");
  if (s.ok()) {
    s = target
            .ExecParams(
                "insert into pgbaton.migration (name, source_system_identifier, source_database, "
                "source_database_oid, slot, target_system_identifier, target_database, "
                "target_database_oid) values ($1, $2, $3, $4::oid, $1, $5, $6, $7::oid) "
                "on conflict (name) do nothing",
                {name, source.system_identifier, source.database, source.database_oid,
                 live_target.system_identifier, live_target.database, live_target.database_oid})
            .status();
  }
  if (!s.ok() && s.code() == ErrorCode::kPermission) {
    // The queue's record still guards the migration; only a lost queue goes unnoticed.
    LogWarning(
        "cannot record the migration in pgbaton.migration on target (no CREATE privilege); "
        "a deleted queue directory will be noticed only through the positions",
        {{"target", live_target.description}, {"error", s.message()}});
    return Status::Ok();
  }
  if (!s.ok()) return s.WithContext("recording the migration in pgbaton.migration on target");
  return Status::Ok();
}

Result<std::optional<DatabaseIdentity>> GetRecord(queue::WorkQueue* queue, const char* key) {
  PGB_ASSIGN_OR_RETURN(std::optional<std::string> v, queue->GetMeta(key));
  if (!v) return std::optional<DatabaseIdentity>();
  PGB_ASSIGN_OR_RETURN(DatabaseIdentity d, FromJson(key, *v));
  return std::optional<DatabaseIdentity>(std::move(d));
}

Result<Lsn> MetaLsn(queue::WorkQueue* queue, const std::string& key) {
  PGB_ASSIGN_OR_RETURN(std::optional<std::string> v, queue->GetMeta(key));
  if (!v || v->empty()) return Lsn::Invalid();
  auto l = Lsn::Parse(*v);
  if (!l.ok()) {
    return Status::Error(ErrorCode::kQueueCorrupt,
                         fmt::format("queue metadata \"{}\" is not an LSN: \"{}\"", key, *v),
                         "restore the queue directory, or start over with `pgbaton copy`");
  }
  return *l;
}

Result<Lsn> SlotStart(queue::WorkQueue* queue) {
  PGB_ASSIGN_OR_RETURN(std::optional<std::string> v, queue->GetMeta(kIdentitySlotKey));
  if (!v) return Lsn::Invalid();
  Json j = Json::parse(*v, nullptr, false);
  if (!j.is_object()) return Lsn::Invalid();
  auto l = Lsn::Parse(j.value("start_lsn", ""));
  return l.ok() ? *l : Lsn::Invalid();
}

// The slot's confirmed position (Invalid when the slot does not exist).
Result<Lsn> SlotConfirmed(PgConn& source, const std::string& slot) {
  PGB_ASSIGN_OR_RETURN(PgResult r, source.ExecParams("select confirmed_flush_lsn::text from "
                                                     "pg_catalog.pg_replication_slots where "
                                                     "slot_name = $1",
                                                     {slot}));
  if (r.rows() == 0 || r.IsNull(0, 0)) return Lsn::Invalid();
  return Lsn::Parse(r.Get(0, 0));
}

Status CheckSlotIdle(PgConn& source, const std::string& slot) {
  auto deadline = std::chrono::steady_clock::now() + kSlotIdleGrace;
  for (;;) {
    PGB_ASSIGN_OR_RETURN(PgResult r, source.ExecParams("select active_pid::text from "
                                                       "pg_catalog.pg_replication_slots where "
                                                       "slot_name = $1 and active",
                                                       {slot}));
    if (r.rows() == 0) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string pid = r.IsNull(0, 0) ? "unknown" : r.GetString(0, 0);
      return Status::Error(
          ErrorCode::kSlotInUse,
          fmt::format("slot \"{}\" on source ({}) is active in process {}: another pgbaton "
                      "run or stream (or another client) is streaming from it",
                      slot, source.description(), pid),
          fmt::format("stop that process first (on the source, pg_stat_activity shows pid {}), "
                      "or choose another --name for another migration; nothing was changed",
                      pid));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

MigrationCheck QueueCheck(const queue::QueueOptions& qo, std::string verb) {
  MigrationCheck c;
  c.name = qo.migration_name;
  c.verb = std::move(verb);
  if (!qo.kafka_brokers.empty()) {
    c.queue_label = fmt::format("kafka topic \"{}\"", qo.kafka_topic);
  } else {
    c.queue_label = fmt::format("queue \"{}\"", qo.dir);
    c.queue_dir = qo.dir;
  }
  return c;
}

Result<DatabaseIdentity> ReadDatabaseIdentity(PgConn& conn) {
  DatabaseIdentity d;
  d.description = fmt::format("{}", conn.description());
  PGB_ASSIGN_OR_RETURN(PgResult r,
                       conn.Exec("select current_database(), (select oid::text from "
                                 "pg_catalog.pg_database where datname = current_database())"));
  d.database = r.GetString(0, 0);
  d.database_oid = r.GetString(0, 1);
  // pg_control_system() may be revoked from the role: then the database OID alone decides.
  auto sysid =
      conn.QueryValue("select system_identifier::text from pg_catalog.pg_control_system()");
  if (sysid.ok()) {
    d.system_identifier = *sysid;
  } else {
    LogDebug("cannot read the system identifier",
             {{"server", d.description}, {"error", sysid.status().message()}});
  }
  return d;
}

Status CheckDistinct(const DatabaseIdentity& source, const DatabaseIdentity& target) {
  bool same_cluster = !source.system_identifier.empty() && !target.system_identifier.empty()
                          ? source.system_identifier == target.system_identifier
                          : source.description == target.description;
  if (!same_cluster || source.database_oid != target.database_oid) return Status::Ok();
  return Status::Error(
      ErrorCode::kSourceIsTarget,
      fmt::format("--source and --target are the same database: \"{}\" (OID {}) on cluster {} "
                  "(source {}, target {})",
                  source.database, source.database_oid,
                  source.system_identifier.empty() ? "?" : source.system_identifier,
                  source.description, target.description),
      "pass the new cluster's conninfo as --target; nothing was changed");
}

Result<LiveSides> CheckSides(const MigrationCheck& check) {
  LiveSides live;
  std::optional<PgConn> source;
  if (!check.source_conninfo.empty()) {
    PGB_ASSIGN_OR_RETURN(PgConn c, Connect(check.source_conninfo, "source"));
    PGB_ASSIGN_OR_RETURN(DatabaseIdentity d, ReadDatabaseIdentity(c));
    live.source = d;
    source.emplace(std::move(c));
  }
  if (!check.target_conninfo.empty()) {
    PGB_ASSIGN_OR_RETURN(PgConn c, Connect(check.target_conninfo, "target"));
    PGB_ASSIGN_OR_RETURN(DatabaseIdentity d, ReadDatabaseIdentity(c));
    live.target = d;
  }
  if (live.source && live.target) PGB_RETURN_IF_ERROR(CheckDistinct(*live.source, *live.target));
  if (source && check.slot_must_be_idle) PGB_RETURN_IF_ERROR(CheckSlotIdle(*source, check.name));
  return live;
}

Status CheckQueue(const MigrationCheck& check, const LiveSides& live, queue::WorkQueue* queue,
                  bool queue_read_only) {
  const std::string where = check.queue_label.empty() ? "the queue" : check.queue_label;
  std::optional<DatabaseIdentity> q_source, q_target;
  bool fresh = false;
  if (queue != nullptr) {
    PGB_ASSIGN_OR_RETURN(q_source, GetRecord(queue, kIdentitySourceKey));
    PGB_ASSIGN_OR_RETURN(q_target, GetRecord(queue, kIdentityTargetKey));
    PGB_ASSIGN_OR_RETURN(bool streamed, QueueHasStreamed(queue));
    fresh = !q_source && !q_target && !streamed;
  }

  if (live.source && q_source) {
    std::string d = Difference(*q_source, *live.source, "source", where);
    if (!d.empty()) {
      return Status::Error(ErrorCode::kIdentityMismatch, d, MismatchHint(check, "source"));
    }
  }
  if (live.target && q_target) {
    std::string d = Difference(*q_target, *live.target, "target", where);
    if (!d.empty()) {
      return Status::Error(ErrorCode::kIdentityMismatch, d, MismatchHint(check, "target"));
    }
  }

  std::optional<PgConn> target;
  std::optional<TargetRecord> t_record;
  if (live.target) {
    PGB_ASSIGN_OR_RETURN(PgConn c, Connect(check.target_conninfo, "target"));
    target.emplace(std::move(c));
    PGB_ASSIGN_OR_RETURN(t_record, ReadTargetRecord(*target, check.name));
    if (t_record) {
      const std::string rec =
          fmt::format("the record of migration \"{}\" in {} on target (made {})", check.name,
                      kTargetTable, t_record->recorded_at);
      // The source this target was filled from.
      const DatabaseIdentity* src = live.source ? &*live.source : q_source ? &*q_source : nullptr;
      if (src != nullptr) {
        std::string d = Difference(t_record->source, *src, "source", rec);
        if (!d.empty()) {
          return Status::Error(ErrorCode::kIdentityMismatch, d, MismatchHint(check, "source"));
        }
      }
      // A record copied along with the database (CREATE DATABASE ... TEMPLATE, a restored dump)
      // describes the database it was made in, not this one.
      std::string d = Difference(t_record->target, *live.target, "target", rec);
      if (!d.empty()) {
        return Status::Error(ErrorCode::kIdentityMismatch, d, MismatchHint(check, "target"));
      }
      if (fresh) {
        return Status::Error(
            ErrorCode::kQueueMissing,
            fmt::format("{} holds no record of migration \"{}\", but target ({}) does ({} "
                        "records it since {}): the queue directory of this migration was "
                        "deleted or replaced, and with it the changes it held and the copy's "
                        "per-table sync LSNs",
                        where, check.name, live.target->description, kTargetTable,
                        t_record->recorded_at),
            fmt::format("pass the migration's own queue; if it is lost, start over: `pgbaton "
                        "cleanup` (with --source, --target{}) and `pgbaton copy` into an empty "
                        "database; nothing was changed",
                        check.queue_dir.empty() ? "" : " and this --queue-dir"));
      }
    }
  }

  // Positions: slot <= what the queue received; the target within what the queue still holds.
  if (check.check_positions && queue != nullptr) {
    PGB_ASSIGN_OR_RETURN(Lsn high, QueueHighWater(queue));
    PGB_ASSIGN_OR_RETURN(Lsn slot_start, SlotStart(queue));
    PGB_ASSIGN_OR_RETURN(Lsn trimmed, MetaLsn(queue, queue::WorkQueue::kTrimmedThroughKey));
    Lsn applied;
    if (target) {
      PGB_ASSIGN_OR_RETURN(applied,
                           applier::ReadTargetPosition(*target, check.name, /*flushed=*/false));
    }
    if (fresh && applied.IsValid()) {
      return Status::Error(
          ErrorCode::kQueueMissing,
          fmt::format("{} is new, but target ({}) has already applied migration \"{}\" up to "
                      "{} (replication origin \"{}\"): the queue that fed it was deleted or "
                      "replaced, and what it held is lost",
                      where, live.target->description, check.name, applied.ToString(), check.name),
          "pass the migration's own queue; if it is lost, start over with `pgbaton cleanup` "
          "and `pgbaton copy` into an empty database (or use another --name for a new "
          "migration); nothing was changed");
    }
    if (applied.IsValid() && trimmed.IsValid() && applied < trimmed) {
      return Status::Error(
          ErrorCode::kQueueMissing,
          fmt::format("target ({}) has applied migration \"{}\" only up to {}, but {} was "
                      "already trimmed through {}: the target lost changes it had applied "
                      "(restored from a backup?) and the queue no longer holds them",
                      live.target->description, check.name, applied.ToString(), where,
                      trimmed.ToString()),
          "start over with `pgbaton cleanup` and `pgbaton copy` into an empty database; "
          "nothing was changed");
    }
    if (live.source) {
      PGB_ASSIGN_OR_RETURN(PgConn src, Connect(check.source_conninfo, "source"));
      PGB_ASSIGN_OR_RETURN(Lsn confirmed, SlotConfirmed(src, check.name));
      Lsn bound = std::max(high, slot_start);
      if (confirmed.IsValid() && bound.IsValid() && confirmed > bound) {
        return Status::Error(
            ErrorCode::kSlotMissing,
            fmt::format("slot \"{}\" on source ({}) has confirmed {}, past everything {} "
                        "received (up to {}): the slot was dropped and re-created (or advanced) "
                        "behind pgbaton's back, and the changes in between are lost",
                        check.name, src.description(), confirmed.ToString(), where,
                        bound.ToString()),
            "start over: `pgbaton cleanup`, then `pgbaton copy` into an empty database; "
            "nothing was changed");
      }
    }
  }

  if (!check.bind) return Status::Ok();
  if (queue != nullptr && !queue_read_only) {
    if (live.source && !q_source) {
      PGB_RETURN_IF_ERROR(queue->PutMeta(kIdentitySourceKey, ToJson(*live.source)));
      q_source = live.source;
    }
    if (live.target && !q_target) {
      PGB_RETURN_IF_ERROR(queue->PutMeta(kIdentityTargetKey, ToJson(*live.target)));
    }
  }
  if (check.record_on_target && target && !t_record && q_source) {
    PGB_RETURN_IF_ERROR(WriteTargetRecord(*target, check.name, *q_source, *live.target));
  }
  return Status::Ok();
}

Result<std::unique_ptr<queue::WorkQueue>> OpenCheckedQueue(const MigrationCheck& check,
                                                           const QueueOpener& open,
                                                           bool queue_read_only,
                                                           LiveSides* live_out) {
  PGB_ASSIGN_OR_RETURN(LiveSides live, CheckSides(check));
  if (live_out != nullptr) *live_out = live;
  std::error_code ec;
  bool existed = check.queue_dir.empty() || fs::exists(check.queue_dir, ec);
  auto q = open();
  Status s = q.ok() ? CheckQueue(check, live, q->get(), queue_read_only) : q.status();
  if (s.ok()) return q;
  if (q.ok()) q->reset();  // closed before its directory goes
  if (!existed) fs::remove_all(check.queue_dir, ec);
  return s;
}

Status RecordOnTarget(const MigrationCheck& check, const LiveSides& live) {
  if (!live.source || !live.target) return Status::Ok();
  PGB_ASSIGN_OR_RETURN(PgConn target, Connect(check.target_conninfo, "target"));
  PGB_ASSIGN_OR_RETURN(auto record, ReadTargetRecord(target, check.name));
  if (record) return Status::Ok();
  return WriteTargetRecord(target, check.name, *live.source, *live.target);
}

Status RecordSlot(queue::WorkQueue* queue, const std::string& slot, Lsn start) {
  Json j = {{"name", slot}, {"start_lsn", start.ToString()}};
  return queue->PutMeta(kIdentitySlotKey, j.dump());
}

Result<bool> QueueHasStreamed(queue::WorkQueue* queue) {
  PGB_ASSIGN_OR_RETURN(std::optional<std::string> slot, queue->GetMeta(kIdentitySlotKey));
  if (slot) return true;
  PGB_ASSIGN_OR_RETURN(Lsn high, QueueHighWater(queue));
  return high.IsValid();
}

Result<Lsn> QueueHighWater(queue::WorkQueue* queue) {
  PGB_ASSIGN_OR_RETURN(Lsn last, queue->LastEndLsn());
  PGB_ASSIGN_OR_RETURN(Lsn kept, MetaLsn(queue, queue::WorkQueue::kHighWaterEndKey));
  PGB_ASSIGN_OR_RETURN(Lsn received, MetaLsn(queue, queue::WorkQueue::kReceivedThroughKey));
  return std::max({last, kept, received});
}

namespace {

// A database dropped and re-created under the recorded name on the recorded cluster.
bool Recreated(const DatabaseIdentity& recorded, const DatabaseIdentity& live) {
  bool same_cluster = recorded.system_identifier.empty() || live.system_identifier.empty() ||
                      recorded.system_identifier == live.system_identifier;
  return same_cluster && recorded.database == live.database &&
         recorded.database_oid != live.database_oid;
}

}  // namespace

Result<std::vector<std::string>> CheckCleanupSides(const std::string& name,
                                                   const std::string& queue_label,
                                                   queue::WorkQueue* queue,
                                                   const std::optional<DatabaseIdentity>& source,
                                                   const std::optional<DatabaseIdentity>& target,
                                                   PgConn* target_conn, bool force) {
  struct Recorded {
    std::string where;
    std::optional<DatabaseIdentity> source, target;
  };
  std::vector<Recorded> records;
  if (queue != nullptr) {
    Recorded r{queue_label, {}, {}};
    PGB_ASSIGN_OR_RETURN(r.source, GetRecord(queue, kIdentitySourceKey));
    PGB_ASSIGN_OR_RETURN(r.target, GetRecord(queue, kIdentityTargetKey));
    records.push_back(std::move(r));
  }
  if (target_conn != nullptr) {
    PGB_ASSIGN_OR_RETURN(auto t, ReadTargetRecord(*target_conn, name));
    if (t) {
      records.push_back({fmt::format("the record of migration \"{}\" in {} on target (made {})",
                                     name, kTargetTable, t->recorded_at),
                         t->source, t->target});
    }
  }
  std::vector<std::string> lines;
  auto check = [&](const std::optional<DatabaseIdentity>& recorded,
                   const std::optional<DatabaseIdentity>& live, const std::string& side,
                   const std::string& where) -> Status {
    if (!recorded || !live) return Status::Ok();
    std::string d = Difference(*recorded, *live, side, where);
    if (d.empty()) {
      lines.push_back(
          fmt::format("{} ({}): the database {} was made for", side, live->description, where));
      return Status::Ok();
    }
    if (Recreated(*recorded, *live)) {
      lines.push_back(d + "; cleaning up what it holds of \"" + name + "\"");
      return Status::Ok();
    }
    if (force) {
      lines.push_back(d + "; --force: cleaning up what it holds of \"" + name + "\" anyway");
      return Status::Ok();
    }
    return Status::Error(
        ErrorCode::kIdentityMismatch,
        fmt::format("{}: the slot, publication and origins named \"{}\" there may belong to "
                    "another migration",
                    d, name),
        fmt::format("point --{0} at the database this migration was made for (database \"{1}\", "
                    "system identifier {2}); to drop what --{0} names anyway, add --force; "
                    "nothing was changed",
                    side, recorded->database,
                    recorded->system_identifier.empty() ? "unknown" : recorded->system_identifier));
  };
  for (const auto& r : records) {
    PGB_RETURN_IF_ERROR(check(r.source, source, "source", r.where));
    PGB_RETURN_IF_ERROR(check(r.target, target, "target", r.where));
  }
  return lines;
}

Result<std::string> ForgetMigration(PgConn& target, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(std::string exists,
                       target.QueryValue("select to_regclass('pgbaton.migration') is not null"));
  if (exists != "t")
    return std::string("migration record pgbaton.migration on target: not present");
  PGB_ASSIGN_OR_RETURN(PgResult r,
                       target.ExecParams("delete from pgbaton.migration where name = $1", {name}));
  std::string out = fmt::format("migration record \"{}\" in pgbaton.migration on target: {}", name,
                                r.AffectedRows() > 0 ? "deleted" : "not present");
  PGB_ASSIGN_OR_RETURN(std::string left,
                       target.QueryValue("select count(*) from pgbaton.migration"));
  if (left == "0") {
    PGB_RETURN_IF_ERROR(target.Run("drop table pgbaton.migration"));
    out += "; table dropped";
    // The schema goes too when nothing else lives in it (progress and sentinel tables are
    // dropped by cleanup with their own schema check).
    PGB_ASSIGN_OR_RETURN(
        std::string objects,
        target.QueryValue("select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace "
                          "n on n.oid = c.relnamespace where n.nspname = 'pgbaton'"));
    if (objects == "0" && target.Run("drop schema if exists pgbaton restrict").ok()) {
      out += "; schema pgbaton dropped";
    }
  }
  return out;
}

}  // namespace pgbaton::tools
