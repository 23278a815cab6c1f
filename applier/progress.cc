#include "applier/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/log.h"

namespace pgbaton::applier {

namespace {

Status CreateOrigins(PgConn& conn, const ProgressStore& store, int jobs) {
  for (int k = 0; k < jobs; ++k) {
    PGB_RETURN_IF_ERROR(
        conn.ExecParams("select pg_catalog.pg_replication_origin_create($1) where not exists "
                        "(select 1 from pg_catalog.pg_replication_origin where roname = $1)",
                        {store.NameOf(k)})
            .status());
  }
  return Status::Ok();
}

}  // namespace

bool IsProgressName(const std::string& name, const std::string& candidate) {
  if (candidate == name) return true;
  if (candidate.size() <= name.size() + 1 || candidate.compare(0, name.size(), name) != 0 ||
      candidate[name.size()] != '-') {
    return false;
  }
  for (size_t i = name.size() + 1; i < candidate.size(); ++i) {
    if (candidate[i] < '0' || candidate[i] > '9') return false;
  }
  return true;
}

std::string ProgressStore::NameOf(int worker) const {
  return worker == 0 ? name_ : fmt::format("{}-{}", name_, worker);
}

Result<ProgressStore> ProgressStore::Open(PgConn& conn, const std::string& name,
                                          ProgressMode requested, int jobs) {
  ProgressStore store;
  store.name_ = name;
  if (requested != ProgressMode::kTable) {
    store.mode_ = ProgressMode::kOrigin;
    Status s = CreateOrigins(conn, store, jobs);
    if (s.ok()) return store;
    if (requested == ProgressMode::kOrigin || s.code() != ErrorCode::kPermission) {
      return s.WithContext(fmt::format("replication origin \"{}\" on target", name))
          .WithHint(
              "run the applier as a superuser (or a role granted EXECUTE on the "
              "pg_replication_origin_* functions), or use --progress table");
    }
    LogWarning(
        "target role may not use replication origins: keeping progress in the table "
        "pgbaton.progress instead",
        {{"origin", name}, {"error", s.message()}});
  }
  store.mode_ = ProgressMode::kTable;
  PGB_RETURN_IF_ERROR(
      conn.Run("create schema if not exists pgbaton; create table if not exists pgbaton.progress ("
               "name text primary key, lsn pg_lsn not null, commit_time timestamptz, "
               "updated_at timestamptz not null default now())"));
  return store;
}

Status ProgressStore::SetupSession(PgConn& conn, int worker) const {
  if (mode_ != ProgressMode::kOrigin) return Status::Ok();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    Status s = conn.ExecParams("select pg_catalog.pg_replication_origin_session_setup($1)",
                               {NameOf(worker)})
                   .status();
    if (s.ok() || std::chrono::steady_clock::now() > deadline ||
        s.message().find("is already active") == std::string::npos) {
      if (!s.ok()) {
        return s.WithContext(fmt::format("replication origin \"{}\" on target", NameOf(worker)))
            .WithHint("another pgbaton applier of this migration may be running; stop it first");
      }
      return s;
    }
    // A previous applier's session that was killed may still be exiting.
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string ProgressStore::RecordSql() const {
  if (mode_ == ProgressMode::kOrigin) {
    return "select pg_catalog.pg_replication_origin_xact_setup($2::pg_lsn, $3::timestamptz) "
           "where $1::text is not null";
  }
  return "insert into pgbaton.progress (name, lsn, commit_time) values ($1, $2::pg_lsn, "
         "$3::timestamptz) on conflict (name) do update set lsn = excluded.lsn, "
         "commit_time = excluded.commit_time, updated_at = now()";
}

Result<Lsn> ProgressStore::ReadPosition(PgConn& conn, bool flushed) const {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      mode_ == ProgressMode::kOrigin
          ? conn.ExecParams(
                "select roname, pg_catalog.pg_replication_origin_progress(roname, $2::bool) "
                "from pg_catalog.pg_replication_origin where roname = $1 or "
                "starts_with(roname, $1 || '-')",
                {name_, flushed ? "true" : "false"})
          : conn.ExecParams("select name, lsn from pgbaton.progress where name = $1 or "
                            "starts_with(name, $1 || '-')",
                            {name_}));
  Lsn best;
  for (int r = 0; r < res.rows(); ++r) {
    if (!IsProgressName(name_, res.GetString(r, 0)) || res.IsNull(r, 1)) continue;
    PGB_ASSIGN_OR_RETURN(Lsn l, Lsn::Parse(res.Get(r, 1)));
    best = std::max(best, l);
  }
  return best;
}

Result<Lsn> ReadTargetPosition(PgConn& conn, const std::string& name, bool flushed) {
  PGB_ASSIGN_OR_RETURN(
      std::string has_table,
      conn.QueryValue("select pg_catalog.to_regclass('pgbaton.progress') is not null"));
  Lsn best;
  for (ProgressMode m : {ProgressMode::kOrigin, ProgressMode::kTable}) {
    if (m == ProgressMode::kTable && has_table != "t") continue;
    PGB_ASSIGN_OR_RETURN(ProgressStore store, ProgressStore::ForReading(name, m));
    Result<Lsn> l = store.ReadPosition(conn, flushed);
    // A role that may not read origins has none of its own: its applier uses the table.
    if (!l.ok() && m == ProgressMode::kOrigin && l.status().code() == ErrorCode::kPermission) {
      continue;
    }
    if (!l.ok()) return l.status();
    best = std::max(best, *l);
  }
  return best;
}

}  // namespace pgbaton::applier
