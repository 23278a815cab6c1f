#include "tools/cutover/globals_check.h"

#include <fmt/format.h>

#include "tools/globals_sync/sync.h"

namespace pgbaton::tools::cutover {

namespace {

globals::SyncOptions RolesOnly(const std::string& source_conninfo,
                               const std::string& target_conninfo) {
  globals::SyncOptions go;
  go.source = source_conninfo;
  go.target = target_conninfo;
  go.diff.databases = std::vector<std::string>{};
  go.application_name = "pgbaton cutover";
  return go;
}

}  // namespace

Result<GlobalsCheck> CheckGlobals(PgConn& source, PgConn& target,
                                  const std::string& source_conninfo,
                                  const std::string& target_conninfo, bool sync) {
  GlobalsCheck c;
  if (target.ServerMajor() < source.ServerMajor()) {
    // A cut back to the old cluster: its roles are the ones the migration started from.
    c.note = "; globals not checked (the target is the older major: a cut back)";
    return c;
  }
  globals::SyncOutcome out;
  PGB_RETURN_IF_ERROR(globals::SyncGlobals(RolesOnly(source_conninfo, target_conninfo), &out));
  if (!out.synced_before) {
    c.note = "; globals never synced by pgbaton, not checked";
    return c;
  }
  if (out.drift.level()) {
    c.note = "; globals level";
    return c;
  }
  std::string first;
  for (size_t i = 0; i < out.drift.actions.size() && i < 3; ++i) {
    first += (i > 0 ? "; " : "") + globals::ActionLine(out.drift.actions[i]);
  }
  if (out.drift.actions.size() > 3) first += "; ...";
  if (!sync) {
    return Status::Error(
        ErrorCode::kGlobalsDrift,
        fmt::format("globals changed on the source since the last sync: {} difference(s) ({})",
                    out.drift.actions.size(), first),
        "run pgbaton globals --apply (pgbaton globals lists them), or pass --sync-globals to "
        "apply them inside the fence");
  }
  c.to_apply = out.drift.actions.size();
  c.note = fmt::format("; {} globals difference(s) to apply in the fence", c.to_apply);
  return c;
}

Result<size_t> ApplyGlobals(const std::string& source_conninfo,
                            const std::string& target_conninfo) {
  globals::SyncOptions go = RolesOnly(source_conninfo, target_conninfo);
  go.apply = true;
  globals::SyncOutcome out;
  PGB_RETURN_IF_ERROR(globals::SyncGlobals(go, &out));
  return out.done.size();
}

Result<std::vector<std::string>> HeldLogins(const std::string& target_conninfo,
                                            const std::string& flag) {
  PGB_ASSIGN_OR_RETURN(
      PgConn target,
      PgConn::Connect(target_conninfo, {.label = "target", .application_name = "pgbaton cutover"}));
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> held, globals::ReadHeldLogins(target));
  if (held.empty()) {
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("{} names no role and the target ({}) holds none for the flip", flag,
                    target.description()),
        "name the roles (--fence roles:R1,R2), or create them held with pgbaton globals "
        "--apply --hold-logins R1,R2 (or a cluster copy's --hold-logins)");
  }
  return held;
}

}  // namespace pgbaton::tools::cutover
