#include "decoder/type_resolver.h"

#include <fmt/format.h>

namespace pgbaton::decoder {

Status PgTypeResolver::Load(std::string_view where,
                            const std::vector<std::optional<std::string>>& params) {
  if (!conn_.connected()) {
    ConnectOptions opts;
    opts.label = "source";
    PGB_ASSIGN_OR_RETURN(conn_, PgConn::Connect(conninfo_, opts));
  }
  std::string sql = fmt::format(
      "select t.oid, n.nspname, t.typname from pg_type t "
      "join pg_namespace n on n.oid = t.typnamespace where {}",
      where);
  PGB_ASSIGN_OR_RETURN(PgResult res,
                       params.empty() ? conn_.Exec(sql) : conn_.ExecParams(sql, params));
  for (int i = 0; i < res.rows(); ++i) {
    names_[static_cast<uint32_t>(res.GetInt(i, 0))] =
        QualifiedName{res.GetString(i, 1), res.GetString(i, 2)};
  }
  return Status::Ok();
}

Result<QualifiedName> PgTypeResolver::Resolve(uint32_t oid) {
  if (auto it = names_.find(oid); it != names_.end()) return it->second;
  if (!builtins_loaded_) {
    PGB_RETURN_IF_ERROR(Load("t.oid < 16384", {}));
    builtins_loaded_ = true;
    if (auto it = names_.find(oid); it != names_.end()) return it->second;
  }
  PGB_RETURN_IF_ERROR(Load("t.oid = $1::oid", {std::to_string(oid)}));
  if (auto it = names_.find(oid); it != names_.end()) return it->second;
  return Status::Error(ErrorCode::kNotFound,
                       fmt::format("type with OID {} on source does not exist", oid),
                       "the type was dropped while a table still used it");
}

Result<QualifiedName> StaticTypeResolver::Resolve(uint32_t oid) {
  if (auto it = names_.find(oid); it != names_.end()) return it->second;
  return Status::Error(ErrorCode::kNotFound, fmt::format("type with OID {} is not known", oid));
}

}  // namespace pgbaton::decoder
