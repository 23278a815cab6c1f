#include "tools/globals_sync/sync.h"

#include <fmt/format.h>

#include <sstream>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/pg.h"
#include "tools/common/identity.h"
#include "tools/globals_sync/apply.h"
#include "tools/globals_sync/globals.h"

namespace pgbaton::tools::globals {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string ActionLine(const Action& a) {
  return fmt::format("{} {}{}", a.change, a.object, a.detail.empty() ? "" : ": " + a.detail);
}

Status SyncGlobals(const SyncOptions& options, SyncOutcome* out) {
  PGB_ASSIGN_OR_RETURN(
      PgConn source,
      PgConn::Connect(options.source,
                      {.label = "source", .application_name = options.application_name}));
  PGB_ASSIGN_OR_RETURN(
      PgConn target,
      PgConn::Connect(options.target,
                      {.label = "target", .application_name = options.application_name}));
  PGB_ASSIGN_OR_RETURN(DatabaseIdentity source_id, ReadDatabaseIdentity(source));
  PGB_ASSIGN_OR_RETURN(DatabaseIdentity target_id, ReadDatabaseIdentity(target));
  PGB_RETURN_IF_ERROR(CheckDistinct(source_id, target_id));
  if (target.ServerMajor() < source.ServerMajor()) {
    return Status::Error(ErrorCode::kVersion,
                         fmt::format("target (PostgreSQL {}) is older than source (PostgreSQL {})",
                                     target.ServerMajor(), source.ServerMajor()),
                         "use a target of the same or a newer major");
  }
  PGB_ASSIGN_OR_RETURN(Globals src, ReadGlobals(source));
  PGB_ASSIGN_OR_RETURN(Globals tgt, ReadGlobals(target));
  out->synced_before = tgt.records;
  if (options.diff.databases) {
    for (const std::string& db : *options.diff.databases) {
      if (!src.FindDatabase(db)) {
        return Status::Error(ErrorCode::kNotFound,
                             fmt::format("--databases: source ({}) has no database \"{}\"",
                                         source.description(), db),
                             "list the source's databases with psql -l");
      }
    }
  }
  if (options.apply && !tgt.superuser) {
    return Status::Error(
        ErrorCode::kPermission,
        fmt::format("target ({}): role \"{}\" is not a superuser; a globals sync creates roles "
                    "with every attribute and stores password verifiers",
                    target.description(), tgt.current_user),
        "connect to the target as a superuser (e.g. the postgres role), or carry the globals "
        "yourself and pass --no-globals");
  }
  out->sides = fmt::format("source ({}, PostgreSQL {}) -> target ({}, PostgreSQL {})",
                           DescribeConninfo(options.source), src.major,
                           DescribeConninfo(options.target), tgt.major);
  out->drift = Diff(src, tgt, options.diff);
  PGB_RETURN_IF_ERROR(CheckCreatable(target, src, &out->drift));
  if (!out->drift.blockers.empty()) {
    const Status& first = out->drift.blockers.front();
    return first.WithHint(
        first.hint() +
        (out->drift.blockers.size() > 1
             ? fmt::format(" ({} problems, listed above)", out->drift.blockers.size())
             : "") +
        "; nothing was changed on the target");
  }
  if (!options.apply) return Status::Ok();
  PGB_RETURN_IF_ERROR(
      ApplyDrift(target, out->drift, [&](const Action& a) { out->done.push_back(a); }));
  out->applied = true;
  // What the target looks like now: level, unless something moved meanwhile.
  PGB_ASSIGN_OR_RETURN(Globals after, ReadGlobals(target));
  out->rest = Diff(src, after, options.diff);
  if (!out->rest->level()) {
    return Status::Error(
        ErrorCode::kGlobalsDrift,
        fmt::format("globals: {} difference(s) remain after the sync", out->rest->actions.size()),
        "something changed the globals meanwhile; run pgbaton globals --apply again");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ReadHeldLogins(PgConn& target) {
  std::vector<std::string> roles;
  PGB_ASSIGN_OR_RETURN(
      std::string exists,
      target.QueryValue(fmt::format("select to_regclass('{}') is not null", kHeldLoginsTable)));
  if (exists != "t") return roles;
  PGB_ASSIGN_OR_RETURN(PgResult res,
                       target.Exec(fmt::format("select role_name from {} where login order by 1",
                                               kHeldLoginsTable)));
  for (int i = 0; i < res.rows(); ++i) roles.push_back(res.GetString(i, 0));
  return roles;
}

Status SyncBeforeCopy(const std::string& source, const std::string& target, const DiffOptions& diff,
                      const std::string& verb) {
  SyncOptions o;
  o.source = source;
  o.target = target;
  o.diff = diff;
  o.apply = true;
  o.application_name = "pgbaton " + verb;
  SyncOutcome out;
  Status st = SyncGlobals(o, &out);
  for (const Status& b : out.drift.blockers)
    LogError("globals: " + b.message(), {{"fix", b.hint()}});
  for (const std::string& w : out.drift.warnings) LogWarning("globals: " + w, {});
  for (const Action& a : out.done) LogInfo("globals: " + ActionLine(a), {});
  if (!st.ok()) {
    return st.WithHint(st.hint() +
                       "; roles and databases are carried before the copy (pgbaton globals "
                       "shows the difference); --no-globals leaves them to you");
  }
  LogInfo("globals: the target's roles and databases are level with the source",
          {{"changes", static_cast<int64_t>(out.done.size())}});
  return Status::Ok();
}

void GlobalsFlags::Register(CLI::App* sub, bool offer_skip) {
  sub->add_option("--hold-logins", hold_logins,
                  "roles (names or globs, comma-separated) created NOLOGIN on the target, "
                  "their LOGIN recorded for cutover --flip roles");
  sub->add_option("--tablespace-map", tablespace_map,
                  "OLD=NEW: a source tablespace's counterpart on the target (repeatable)");
  sub->add_flag("--no-tablespaces", no_tablespaces,
                "put everything in the target's default tablespace");
  if (!offer_skip) return;
  sub->add_flag("--no-globals", skip,
                "with --databases: do not carry roles and databases first (the target must "
                "have the databases and the roles that own their objects already)");
}

Status GlobalsFlags::CheckCluster(bool cluster) const {
  if (cluster) return Status::Ok();
  if (!hold_logins.empty() || !tablespace_map.empty() || no_tablespaces || skip) {
    return Status::Error(ErrorCode::kUsage,
                         "--hold-logins, --tablespace-map, --no-tablespaces and --no-globals "
                         "belong to a cluster migration (--databases)",
                         "add --databases, or carry the globals with pgbaton globals");
  }
  return Status::Ok();
}

Result<DiffOptions> GlobalsFlags::ToDiffOptions(
    std::optional<std::vector<std::string>> databases) const {
  DiffOptions o;
  o.hold_logins = SplitList(hold_logins);
  for (const std::string& m : tablespace_map) {
    PGB_ASSIGN_OR_RETURN(auto pair, ParseTablespaceMapping(m));
    o.tablespace_map[pair.first] = pair.second;
  }
  if (no_tablespaces && !o.tablespace_map.empty()) {
    return Status::Error(ErrorCode::kUsage,
                         "--tablespace-map and --no-tablespaces exclude each other",
                         "give one of them");
  }
  o.no_tablespaces = no_tablespaces;
  o.databases = std::move(databases);
  return o;
}

}  // namespace pgbaton::tools::globals
