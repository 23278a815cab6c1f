#include "applier/target_relation.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/log.h"
#include "common/sql_ident.h"

namespace pgbaton::applier {

TargetRelation DescribeWithoutCatalog(const queue::RelationDescriptor& d, bool partitioned) {
  TargetRelation t;
  t.source = d;
  t.qualified_name = d.schema + "." + d.name;
  t.quoted_name = QuoteQualified(d.schema, d.name);
  t.partitioned = partitioned;
  std::vector<int> key;
  for (size_t i = 0; i < d.columns.size(); ++i) {
    const auto& c = d.columns[i];
    TargetColumn tc;
    tc.name = c.name;
    tc.quoted_name = QuoteIdent(c.name);
    tc.cast = QuoteQualified(c.type);
    // Without a catalog: an array type (by convention "_name") has no array type of its own,
    // and box is the one built-in type whose array elements are separated by ';'.
    tc.batchable =
        !c.type.name.starts_with('_') && !(c.type.schema == "pg_catalog" && c.type.name == "box");
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

namespace {

const queue::Column* FindColumn(const queue::RelationDescriptor& d, const std::string& name) {
  for (const auto& c : d.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// The newest of `d` and `versions` (descriptors of the same relation).
const queue::RelationDescriptor& Newest(const queue::RelationDescriptor& d,
                                        const std::vector<queue::RelationDescriptor>& versions) {
  const queue::RelationDescriptor* newest = &d;
  for (const auto& v : versions) {
    if (v.id == d.id && v.version > newest->version) newest = &v;
  }
  return *newest;
}

// A source type as PostgreSQL prints it ("numeric(12,4)"), asked of the target, which knows the
// type when the schemas match; else the descriptor's name and typmod. Only for messages.
std::string DescribeSourceType(PgConn& conn, const queue::Column& c) {
  auto r = conn.ExecParams(
      "select pg_catalog.format_type(t.oid, $3::int) from pg_catalog.pg_type t join "
      "pg_catalog.pg_namespace n on n.oid = t.typnamespace where n.nspname = $1 and "
      "t.typname = $2",
      {c.type.schema, c.type.name, std::to_string(c.type_modifier)});
  if (r.ok() && r->rows() == 1) return r->GetString(0, 0);
  std::string name = QuoteQualified(c.type);
  if (c.type_modifier < 0) return name;
  return fmt::format("{} (typmod {})", name, c.type_modifier);
}

struct TargetColumnInfo {
  bool generated = false;
  std::string base;  // typname of the type, or of a domain's base type
  // The type's schema and name (a domain's innermost base), as the decoder names source types.
  QualifiedName type;
  int32_t type_modifier = -1;
  std::string printed;  // format_type(), for messages
  std::string cast;     // quote_ident(schema) || '.' || quote_ident(typname), by the target
  bool batchable = true;
};

}  // namespace

Result<TargetRelation> LoadTargetRelation(PgConn& conn, const queue::RelationDescriptor& d,
                                          const std::vector<queue::RelationDescriptor>& versions) {
  TargetRelation t = DescribeWithoutCatalog(d);
  t.unique_indexes.clear();
  PGB_ASSIGN_OR_RETURN(
      PgResult rel,
      conn.ExecParams("select c.oid, c.relkind, pg_catalog.quote_ident(n.nspname) || '.' || "
                      "pg_catalog.quote_ident(c.relname) from pg_catalog.pg_class c join "
                      "pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 "
                      "and c.relname = $2 and c.relkind in ('r', 'p')",
                      {d.schema, d.name}));
  if (rel.rows() == 0) {
    // Most often the target conninfo names the wrong database (another database of the right
    // cluster, or a new empty one): say which database was looked in and what it holds.
    auto db = conn.QueryValue(
        "select format('%s (%s user tables)', current_database(), count(*)) from "
        "pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where "
        "c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema', "
        "'pgbaton') and n.nspname not like 'pg\\_toast%'");
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("relation \"{}\" does not exist on the target{}", t.qualified_name,
                    db.ok() ? fmt::format(" database {}", *db) : ""),
        "check that --target names the database the copy filled (dbname=...); if it does, "
        "create the table there (pg_dump --schema-only -t on the source piped to psql on the "
        "target), as for a table added to the source mid-migration");
  }
  std::string oid = rel.GetString(0, 0);
  t.partitioned = rel.Get(0, 1) == "p";

  // Columns by name, with their types named the way the decoder names source types
  // (decoder/type_resolver.cc: "nspname.typname"), so that a type changed on the source is seen.
  // pgoutput describes a domain by its base type (its Type message carries the name of
  // getBaseType()), so a domain column is compared by its innermost base type; its typmod is the
  // column's own on both sides. Generated columns are computed by the target, never written.
  PGB_ASSIGN_OR_RETURN(
      PgResult cols,
      conn.ExecParams(
          "with recursive dom(oid, base) as (select oid, typbasetype from pg_catalog.pg_type "
          "where typtype = 'd' union all select dom.oid, t.typbasetype from dom join "
          "pg_catalog.pg_type t on t.oid = dom.base and t.typtype = 'd') "
          "select a.attname, a.attgenerated <> '' as generated, a.attnum, "
          "coalesce(bt.typname, t.typname) as base, "
          "coalesce(un.nspname, tn.nspname), coalesce(ut.typname, t.typname), "
          "a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod), "
          "pg_catalog.quote_ident(coalesce(un.nspname, tn.nspname)) || '.' || "
          "pg_catalog.quote_ident(coalesce(ut.typname, t.typname)), "
          "coalesce(ut.typarray, t.typarray) <> 0 and coalesce(ut.typdelim, t.typdelim) = ',' "
          "from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid "
          "join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace "
          "left join pg_catalog.pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype "
          "left join dom on t.typtype = 'd' and dom.oid = t.oid "
          "left join pg_catalog.pg_type ut on ut.oid = dom.base and ut.typtype <> 'd' "
          "left join pg_catalog.pg_namespace un on un.oid = ut.typnamespace "
          "where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped and "
          "(t.typtype <> 'd' or ut.oid is not null) order by a.attnum",
          {oid}));
  static const std::set<std::string> kNoEquality = {"json",    "xml",   "point", "box",
                                                    "polygon", "line",  "lseg",  "circle",
                                                    "path",    "_json", "_xml",  "_point"};
  std::map<std::string, TargetColumnInfo> target_cols;
  std::vector<std::string> target_order;
  std::map<std::string, std::string> attnum_to_name;
  for (int r = 0; r < cols.rows(); ++r) {
    TargetColumnInfo info;
    info.generated = cols.GetBool(r, 1);
    info.base = cols.GetString(r, 3);
    info.type = QualifiedName{cols.GetString(r, 4), cols.GetString(r, 5)};
    info.type_modifier = static_cast<int32_t>(cols.GetInt(r, 6));
    info.printed = cols.GetString(r, 7);
    info.cast = cols.GetString(r, 8);
    info.batchable = cols.GetBool(r, 9);
    target_cols[cols.GetString(r, 0)] = info;
    target_order.push_back(cols.GetString(r, 0));
    attnum_to_name[cols.GetString(r, 2)] = cols.GetString(r, 0);
  }

  // DDL on the source shows up as a new descriptor version. The target may be behind the source
  // (the operator has not run the DDL there yet: refuse, naming the fix) or ahead of `d` (the
  // operator ran it after an earlier stop, and changes of the older shape are still queued: they
  // apply, the dropped column's values are not written). `newest` tells which.
  const queue::RelationDescriptor& newest = Newest(d, versions);
  // Fixes are for people: names as the target quotes them (quote_ident, only where needed).
  std::string fix_prefix = fmt::format("alter table {}", rel.GetString(0, 2));
  auto display = [&conn](const std::string& name) {
    auto q = conn.QueryValue("select pg_catalog.quote_ident($1)", {name});
    return q.ok() ? *q : QuoteIdent(name);
  };
  std::map<std::string, int> source_index;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    auto& c = t.columns[i];
    const queue::Column& sc = d.columns[i];
    source_index[c.name] = static_cast<int>(i);
    auto it = target_cols.find(c.name);
    if (it == target_cols.end()) {
      if (!sc.is_key && newest.version > d.version && FindColumn(newest, c.name) == nullptr) {
        c.skip = true;  // dropped on the source since `d`, and on the target already
        c.comparable = false;
        continue;
      }
      return Status::Error(
          ErrorCode::kSchemaChanged,
          fmt::format("column \"{}\" of relation \"{}\" is missing on the target", c.name,
                      t.qualified_name),
          fmt::format("apply the same ALTER TABLE on the target as on the source (e.g. {} add "
                      "column {} {}, with the source's default and constraints), then run again",
                      fix_prefix, display(c.name), DescribeSourceType(conn, sc)));
    }
    const TargetColumnInfo& tc = it->second;
    c.skip = tc.generated;
    c.comparable = kNoEquality.count(tc.base) == 0;
    // The target names the type it resolved; the same type by schema and name (checked below)
    // or the one the source changed to later, so the target's rendering is the cast.
    c.cast = tc.cast;
    c.batchable = tc.batchable;
    auto same_type = [&tc](const queue::Column& col) {
      return col.type == tc.type && col.type_modifier == tc.type_modifier;
    };
    if (same_type(sc)) continue;
    const queue::Column* later = FindColumn(newest, c.name);
    if (newest.version > d.version && later != nullptr && same_type(*later)) {
      continue;  // the target already has the type the source changed to after `d`
    }
    std::string source_type = DescribeSourceType(conn, sc);
    return Status::Error(
        ErrorCode::kSchemaChanged,
        fmt::format("column \"{}\" of relation \"{}\" is {} on the source but {} on the target",
                    c.name, t.qualified_name, source_type, tc.printed),
        fmt::format("the column's type changed on the source: apply the same ALTER TABLE on the "
                    "target ({} alter column {} type {}), then run again",
                    fix_prefix, display(c.name), source_type));
  }

  // Target columns the source does not send. One the source had in an earlier version was
  // dropped there: new rows would silently get the target's default, so refuse. One it never
  // sent may have been added on the target ahead of the source (allowed, like native logical
  // replication), or dropped on the source before any change reached the queue: it cannot be
  // told apart, so it is only logged.
  for (const std::string& name : target_order) {
    const TargetColumnInfo& tc = target_cols[name];
    if (tc.generated || source_index.count(name) != 0) continue;
    if (FindColumn(newest, name) != nullptr) continue;  // added on the source after `d`
    bool dropped = false;
    for (const auto& v : versions) {
      if (v.id == d.id && v.version < d.version && FindColumn(v, name) != nullptr) dropped = true;
    }
    if (dropped) {
      return Status::Error(
          ErrorCode::kSchemaChanged,
          fmt::format("column \"{}\" of relation \"{}\" was dropped on the source but is still "
                      "on the target",
                      name, t.qualified_name),
          fmt::format("apply the same ALTER TABLE on the target ({} drop column {}), then run "
                      "again",
                      fix_prefix, display(name)));
    }
    LogWarning(fmt::format("column \"{}\" of relation \"{}\" on the target is not sent by the "
                           "source: rows written by pgbaton get its default",
                           name, t.qualified_name),
               {{"hint", "if it was dropped on the source, drop it on the target too"}});
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

bool Mergeable(const TargetRelation& rel, const queue::Change& c) {
  if (c.kind != queue::ChangeKind::kUpdate || c.old_tuple || !c.new_tuple || !rel.HasKey()) {
    return false;
  }
  if (rel.source.identity != queue::ReplicaIdentity::kDefault &&
      rel.source.identity != queue::ReplicaIdentity::kIndex) {
    return false;
  }
  if (c.new_tuple->size() != rel.columns.size()) return false;
  std::vector<int> key = rel.key_columns;
  std::sort(key.begin(), key.end());
  for (const auto& idx : rel.unique_indexes) {
    std::vector<int> a = idx;
    std::sort(a.begin(), a.end());
    if (idx.empty() || a != key) return false;
  }
  for (int k : rel.key_columns) {
    if ((*c.new_tuple)[k].kind != queue::ValueKind::kText) return false;
  }
  return true;
}

}  // namespace pgbaton::applier
