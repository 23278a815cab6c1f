#include "tools/copy/catalog.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace pgbaton::tools::copy {
namespace {

bool Matches(const std::string& pattern, const std::string& schema, const std::string& table) {
  if (pattern.find('.') == std::string::npos) {
    return fnmatch(pattern.c_str(), table.c_str(), 0) == 0;
  }
  std::string full = schema + "." + table;
  return fnmatch(pattern.c_str(), full.c_str(), 0) == 0;
}

// User relations only: not catalogs, not toast or temp schemas, not members of an extension.
constexpr const char* kUserRelation =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' "
    "AND n.nspname !~ '^pg_temp_' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE "
    "d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

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

std::string QuotedTableName(const PgConn& conn, const std::string& schema,
                            const std::string& name) {
  return conn.QuoteIdent(schema) + "." + conn.QuoteIdent(name);
}

Result<TableList> ListTables(PgConn& conn, const TableFilter& filter) {
  std::string sql = fmt::format(
      "SELECT c.oid, n.nspname, c.relname, coalesce(rn.nspname, n.nspname), "
      "coalesce(rc.relname, c.relname), pg_relation_size(c.oid), c.relreplident, "
      "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
      "(SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
      "  AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisprimary "
      "  AND i.indnatts = 1 AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, "
      "  'int8'::regtype)) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_class rc ON rc.oid = pg_partition_root(c.oid) "
      "LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
      "WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND {} "
      "ORDER BY pg_relation_size(c.oid) DESC, n.nspname, c.relname",
      kUserRelation);
  PGB_ASSIGN_OR_RETURN(PgResult res, conn.Exec(sql));
  TableList out;
  std::map<uint32_t, size_t> by_oid;
  for (int r = 0; r < res.rows(); ++r) {
    TableInfo t;
    t.oid = static_cast<uint32_t>(res.GetInt(r, 0));
    t.schema = res.GetString(r, 1);
    t.name = res.GetString(r, 2);
    t.root_schema = res.GetString(r, 3);
    t.root_name = res.GetString(r, 4);
    t.bytes = static_cast<uint64_t>(res.GetInt(r, 5));
    t.replica_identity = res.Get(r, 6).empty() ? 'd' : res.Get(r, 6)[0];
    t.has_primary_key = res.GetBool(r, 7);
    t.int_key = res.GetString(r, 8);
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

  PGB_ASSIGN_OR_RETURN(
      PgResult cols,
      conn.Exec(fmt::format("SELECT a.attrelid, a.attname, a.atttypid, "
                            "format_type(a.atttypid, NULL) FROM pg_attribute a "
                            "JOIN pg_class c ON c.oid = a.attrelid "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
                            "AND a.attgenerated = '' AND {} ORDER BY a.attrelid, a.attnum",
                            kUserRelation)));
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

Result<std::vector<SequenceInfo>> ListSequences(PgConn& conn) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec(fmt::format("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND {} "
                            "ORDER BY 1, 2",
                            kUserRelation)));
  std::vector<SequenceInfo> out;
  for (int r = 0; r < res.rows(); ++r) out.push_back({res.GetString(r, 0), res.GetString(r, 1)});
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ListPopulatedMatviews(PgConn& conn) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec(fmt::format("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND "
                            "c.relispopulated AND {} ORDER BY c.oid",
                            kUserRelation)));
  std::vector<std::pair<std::string, std::string>> out;
  for (int r = 0; r < res.rows(); ++r) out.emplace_back(res.GetString(r, 0), res.GetString(r, 1));
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
