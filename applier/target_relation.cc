#include "applier/target_relation.h"

#include <fmt/format.h>

#include <map>
#include <set>

namespace pgbaton::applier {

namespace {

bool IsPlainIdent(std::string_view s) {
  if (s.empty() || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  // A few reserved words that are also plausible names; quoting them is always safe.
  static const std::set<std::string_view> kReserved = {"user",
                                                       "order",
                                                       "group",
                                                       "table",
                                                       "select",
                                                       "from",
                                                       "where",
                                                       "limit",
                                                       "offset",
                                                       "check",
                                                       "default",
                                                       "primary",
                                                       "references",
                                                       "column",
                                                       "to",
                                                       "end",
                                                       "all",
                                                       "and",
                                                       "or",
                                                       "not",
                                                       "case",
                                                       "when",
                                                       "desc",
                                                       "asc",
                                                       "union",
                                                       "grant",
                                                       "constraint",
                                                       "unique",
                                                       "foreign",
                                                       "with",
                                                       "window",
                                                       "analyse",
                                                       "analyze",
                                                       "do",
                                                       "else",
                                                       "for",
                                                       "in",
                                                       "into",
                                                       "is",
                                                       "null",
                                                       "on",
                                                       "only",
                                                       "then",
                                                       "true",
                                                       "false",
                                                       "array",
                                                       "as",
                                                       "both",
                                                       "cast",
                                                       "collate",
                                                       "create",
                                                       "current_date",
                                                       "current_time",
                                                       "current_user",
                                                       "distinct",
                                                       "except",
                                                       "fetch",
                                                       "having",
                                                       "intersect",
                                                       "leading",
                                                       "trailing",
                                                       "returning",
                                                       "session_user",
                                                       "some",
                                                       "symmetric",
                                                       "using",
                                                       "variadic",
                                                       "any",
                                                       "authorization",
                                                       "binary",
                                                       "left",
                                                       "right",
                                                       "join",
                                                       "natural",
                                                       "inner",
                                                       "outer",
                                                       "full",
                                                       "cross",
                                                       "like",
                                                       "ilike",
                                                       "similar",
                                                       "verbose",
                                                       "freeze",
                                                       "notnull",
                                                       "isnull",
                                                       "overlaps",
                                                       "tablesample",
                                                       "lateral",
                                                       "placing",
                                                       "localtime",
                                                       "localtimestamp",
                                                       "current_role",
                                                       "current_catalog",
                                                       "current_schema",
                                                       "current_timestamp",
                                                       "deferrable",
                                                       "initially"};
  return kReserved.count(s) == 0;
}

}  // namespace

std::string QuoteIdentifier(std::string_view ident) {
  if (IsPlainIdent(ident)) return std::string(ident);
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteTypeName(std::string_view type_name) {
  // Built-in names that carry spaces or typmods are passed through as PostgreSQL prints them
  // ("character varying", "timestamp with time zone"): they are valid type syntax as they are.
  if (type_name.find(' ') != std::string_view::npos ||
      type_name.find('(') != std::string_view::npos) {
    return std::string(type_name);
  }
  size_t dot = type_name.find('.');
  if (dot == std::string_view::npos) return QuoteIdentifier(type_name);
  return QuoteIdentifier(type_name.substr(0, dot)) + "." +
         QuoteIdentifier(type_name.substr(dot + 1));
}

TargetRelation DescribeWithoutCatalog(const queue::RelationDescriptor& d, bool partitioned) {
  TargetRelation t;
  t.source = d;
  t.qualified_name = d.schema + "." + d.name;
  t.quoted_name = QuoteIdentifier(d.schema) + "." + QuoteIdentifier(d.name);
  t.partitioned = partitioned;
  std::vector<int> key;
  for (size_t i = 0; i < d.columns.size(); ++i) {
    const auto& c = d.columns[i];
    TargetColumn tc;
    tc.name = c.name;
    tc.quoted_name = QuoteIdentifier(c.name);
    tc.cast = QuoteTypeName(c.type_name);
    tc.is_key = c.is_key;
    t.columns.push_back(tc);
    if (c.is_key) key.push_back(static_cast<int>(i));
  }
  if (d.identity == queue::ReplicaIdentity::kDefault ||
      d.identity == queue::ReplicaIdentity::kIndex) {
    t.key_columns = key;
    if (!key.empty()) t.unique_indexes.push_back(key);
  }
  return t;
}

Result<TargetRelation> LoadTargetRelation(PgConn& conn, const queue::RelationDescriptor& d) {
  TargetRelation t = DescribeWithoutCatalog(d);
  t.unique_indexes.clear();
  PGB_ASSIGN_OR_RETURN(
      PgResult rel,
      conn.ExecParams("select c.oid, c.relkind from pg_catalog.pg_class c join "
                      "pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 "
                      "and c.relname = $2 and c.relkind in ('r', 'p')",
                      {d.schema, d.name}));
  if (rel.rows() == 0) {
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("relation \"{}\" does not exist on the target", t.qualified_name),
        "create the schema on the target first (pg_dump --schema-only on the "
        "source piped to psql on the target, or pgbaton copy)");
  }
  std::string oid = rel.GetString(0, 0);
  t.partitioned = rel.Get(0, 1) == "p";

  // Columns by name; generated columns are computed by the target, never written.
  PGB_ASSIGN_OR_RETURN(
      PgResult cols,
      conn.ExecParams(
          "select a.attname, a.attgenerated <> '' as generated, a.attnum, "
          "coalesce(bt.typname, t.typname) as base "
          "from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid "
          "left join pg_catalog.pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype "
          "where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped",
          {oid}));
  static const std::set<std::string> kNoEquality = {"json",    "xml",   "point", "box",
                                                    "polygon", "line",  "lseg",  "circle",
                                                    "path",    "_json", "_xml",  "_point"};
  std::map<std::string, std::pair<bool, std::string>> target_cols;  // name -> generated, base
  std::map<std::string, std::string> attnum_to_name;
  for (int r = 0; r < cols.rows(); ++r) {
    target_cols[cols.GetString(r, 0)] = {cols.GetBool(r, 1), cols.GetString(r, 3)};
    attnum_to_name[cols.GetString(r, 2)] = cols.GetString(r, 0);
  }
  std::map<std::string, int> source_index;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    auto& c = t.columns[i];
    source_index[c.name] = static_cast<int>(i);
    auto it = target_cols.find(c.name);
    if (it == target_cols.end()) {
      return Status::Error(
          ErrorCode::kSchemaChanged,
          fmt::format("column \"{}\" of relation \"{}\" is missing on the target", c.name,
                      t.qualified_name),
          "add the column on the target (the source's DDL must be run on the target too)");
    }
    c.skip = it->second.first;
    c.comparable = kNoEquality.count(it->second.second) == 0;
  }

  // Unique indexes (and the primary key) on the target, for write sets. Expression and partial
  // unique indexes cannot be keyed from row values: they are recorded as an empty entry, which
  // makes every write to the relation conflict with every other (see write_set.h).
  PGB_ASSIGN_OR_RETURN(
      PgResult idx,
      conn.ExecParams("select i.indexrelid, i.indexprs is not null or i.indpred is not null, "
                      "array_to_string(i.indkey::int2[], ' ') from pg_catalog.pg_index i "
                      "where i.indrelid = $1::oid and i.indisunique order by i.indexrelid",
                      {oid}));
  for (int r = 0; r < idx.rows(); ++r) {
    std::vector<int> cols_of_index;
    bool opaque = idx.GetBool(r, 1);
    std::string keys = idx.GetString(r, 2);
    size_t pos = 0;
    while (!opaque && pos < keys.size()) {
      size_t sp = keys.find(' ', pos);
      std::string num = keys.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
      pos = sp == std::string::npos ? keys.size() : sp + 1;
      auto name = attnum_to_name.find(num);
      auto si = name == attnum_to_name.end() ? source_index.end() : source_index.find(name->second);
      if (si == source_index.end()) {
        opaque = true;  // expression column (0) or a column the source does not send
        break;
      }
      cols_of_index.push_back(si->second);
    }
    if (opaque) cols_of_index.clear();
    t.unique_indexes.push_back(cols_of_index);
  }
  return t;
}

}  // namespace pgbaton::applier
