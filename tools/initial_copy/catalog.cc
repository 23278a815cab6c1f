#include "tools/initial_copy/catalog.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "catalog/source_catalog.h"

namespace pgbaton::tools::copy {
namespace {

bool Matches(const std::string& pattern, const std::string& schema, const std::string& table) {
  if (pattern.find('.') == std::string::npos) {
    return fnmatch(pattern.c_str(), table.c_str(), 0) == 0;
  }
  std::string full = schema + "." + table;
  return fnmatch(pattern.c_str(), full.c_str(), 0) == 0;
}

}  // namespace

bool TableFilter::Selects(const std::string& schema, const std::string& table) const {
  bool in = include_.empty();
  for (const auto& p : include_) in = in || Matches(p, schema, table);
  if (!in) return false;
  for (const auto& p : exclude_) {
    if (Matches(p, schema, table)) return false;
  }
  return true;
}

Result<TableList> ListTables(PgConn& conn, const TableFilter& filter) {
  PGB_ASSIGN_OR_RETURN(std::vector<catalog::UserTable> all, catalog::ListUserTables(conn));
  // Biggest first (the longest copies start first), then by name as listed.
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
  TableList out;
  std::map<uint32_t, size_t> by_oid;
  for (const auto& u : all) {
    // pgbaton's own schema (the DDL log, a cutover sentinel) is not copied (pg_dump leaves it
    // out too).
    if (!u.Streamed() || u.extension_member || u.name.schema == "pgbaton") continue;
    TableInfo t;
    t.oid = u.oid;
    t.schema = u.name.schema;
    t.name = u.name.name;
    t.root_schema = u.root.schema;
    t.root_name = u.root.name;
    t.bytes = u.bytes;
    t.has_identity = u.HasIdentity();
    t.int_key = u.int_key;
    if (filter.Selects(t.root_schema, t.root_name)) {
      by_oid[t.oid] = out.selected.size();
      out.selected.push_back(std::move(t));
    } else {
      out.excluded.push_back(std::move(t));
    }
  }
  if (out.selected.empty()) return out;

  // Types whose binary form does not depend on the cluster (see TableInfo::binary_safe).
  PGB_ASSIGN_OR_RETURN(
      PgResult types,
      conn.Exec("SELECT t.oid, t.typtype, t.typbasetype, t.typelem, t.typsend::oid <> 0 AND "
                "t.typreceive::oid <> 0 AND t.typname NOT LIKE 'reg%' "
                "FROM pg_type t WHERE t.oid < 16384 OR t.typtype IN ('e', 'd')"));
  struct TypeRow {
    char kind;
    uint32_t base, elem;
    bool send_recv;
  };
  std::map<uint32_t, TypeRow> type_rows;
  for (int r = 0; r < types.rows(); ++r) {
    type_rows[static_cast<uint32_t>(types.GetInt(r, 0))] = {
        types.Get(r, 1).empty() ? 'b' : types.Get(r, 1)[0],
        static_cast<uint32_t>(types.GetInt(r, 2)), static_cast<uint32_t>(types.GetInt(r, 3)),
        types.GetBool(r, 4)};
  }
  std::function<bool(uint32_t, int)> binary_safe = [&](uint32_t oid, int depth) -> bool {
    auto it = type_rows.find(oid);
    if (it == type_rows.end() || depth > 8) return false;
    if (it->second.kind == 'e') return true;
    if (it->second.kind == 'd') return binary_safe(it->second.base, depth + 1);
    if (oid >= 16384 || !it->second.send_recv) return false;
    return it->second.elem == 0 ||
           (it->second.elem < 16384 && binary_safe(it->second.elem, depth + 1));
  };
  for (auto& t : out.selected) t.binary_safe = true;

  std::string oids;
  for (const auto& t : out.selected) oids += (oids.empty() ? "" : ",") + std::to_string(t.oid);
  PGB_ASSIGN_OR_RETURN(
      PgResult cols,
      conn.Exec(fmt::format("SELECT a.attrelid, a.attname, a.atttypid, "
                            "format_type(a.atttypid, NULL) FROM pg_attribute a "
                            "WHERE a.attrelid = ANY('{{{}}}'::oid[]) AND a.attnum > 0 AND NOT "
                            "a.attisdropped AND a.attgenerated = '' ORDER BY a.attrelid, a.attnum",
                            oids)));
  for (int r = 0; r < cols.rows(); ++r) {
    auto it = by_oid.find(static_cast<uint32_t>(cols.GetInt(r, 0)));
    if (it == by_oid.end()) continue;
    TableInfo& t = out.selected[it->second];
    t.columns.push_back(cols.GetString(r, 1));
    if (t.binary_safe && !binary_safe(static_cast<uint32_t>(cols.GetInt(r, 2)), 0)) {
      t.binary_safe = false;
      t.text_reason = cols.GetString(r, 1) + " " + cols.GetString(r, 3);
    }
  }
  return out;
}

Status CheckExtensions(PgConn& source, PgConn& target) {
  PGB_ASSIGN_OR_RETURN(
      PgResult src,
      source.Exec("SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' "
                  "ORDER BY 1"));
  PGB_ASSIGN_OR_RETURN(PgResult dst, target.Exec("SELECT name FROM pg_available_extensions"));
  std::set<std::string> available;
  for (int r = 0; r < dst.rows(); ++r) available.insert(dst.GetString(r, 0));
  for (int r = 0; r < src.rows(); ++r) {
    std::string ext = src.GetString(r, 0);
    if (available.count(ext) == 0) {
      return Status::Error(
          ErrorCode::kNotFound,
          fmt::format("extension \"{}\" (version {}) is installed on the source but not "
                      "available on target ({})",
                      ext, src.GetString(r, 1), target.description()),
          fmt::format("install the package that provides \"{}\" for PostgreSQL {} on the target "
                      "host (e.g. postgresql-{}-{}), then run the same command again",
                      ext, target.ServerMajor(), target.ServerMajor(), ext));
    }
  }
  return Status::Ok();
}

}  // namespace pgbaton::tools::copy
