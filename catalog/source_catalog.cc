#include "catalog/source_catalog.h"

#include <fmt/format.h>

#include <string_view>

namespace pgbaton::catalog {

namespace {

// The one definition of a user schema: not the system's, not a toast or temporary one.
constexpr const char* kUserSchema =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' "
    "AND n.nspname !~ '^pg_temp_'";

// Created by CREATE EXTENSION: the extension makes it on the target, pg_dump leaves it out.
constexpr const char* kExtensionMember =
    "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
    "'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')";

// The columns UserTable is read from, in its order; `c` is the table, `n` its schema.
constexpr const char* kTableSelect =
    "SELECT c.oid, n.nspname, c.relname, coalesce(rn.nspname, n.nspname), "
    "coalesce(rc.relname, c.relname), "
    "pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
    "c.relkind = 'p', c.relpersistence, {}, c.relreplident, "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident), "
    "(SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
    "  ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid "
    "  AND i.indisprimary AND i.indnatts = 1 AND a.atttypid IN ('int2'::pg_catalog.regtype, "
    "  'int4'::pg_catalog.regtype, 'int8'::pg_catalog.regtype)), "
    "pg_catalog.pg_relation_size(c.oid) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_class rc ON rc.oid = pg_catalog.pg_partition_root(c.oid) "
    "LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND ";

// Relations in user schemas matching `where`: schema, name, then `columns`.
Result<PgResult> UserRelations(PgConn& conn, std::string_view columns, std::string_view where,
                               std::string_view order_by) {
  return conn.Exec(fmt::format(
      "SELECT n.nspname, c.relname{} FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
      "ON n.oid = c.relnamespace WHERE {} AND {} ORDER BY {}",
      columns, where, kUserSchema, order_by));
}

UserTable TableAt(const PgResult& res, int r) {
  UserTable t;
  t.oid = static_cast<uint32_t>(res.GetInt(r, 0));
  t.name = QualifiedName{res.GetString(r, 1), res.GetString(r, 2)};
  t.root = QualifiedName{res.GetString(r, 3), res.GetString(r, 4)};
  t.display = res.GetString(r, 5);
  t.partitioned = res.GetBool(r, 6);
  t.persistence = res.Get(r, 7).empty() ? 'p' : res.Get(r, 7)[0];
  t.extension_member = res.GetBool(r, 8);
  t.replica_identity = res.Get(r, 9).empty() ? 'd' : res.Get(r, 9)[0];
  t.has_primary_key = res.GetBool(r, 10);
  t.has_identity_index = res.GetBool(r, 11);
  t.int_key = res.GetString(r, 12);
  t.bytes = static_cast<uint64_t>(res.GetInt(r, 13));
  return t;
}

// `tables` with each partitioned table replaced by its leaf partitions, for a PostgreSQL 12 source
// (its publications take no partitioned table; 13+ publish a partitioned table's changes per
// partition all the same). A table that does not exist stays as named, for CREATE PUBLICATION to
// name it. Simple protocol: `conn` may be a replication connection.
Result<std::vector<QualifiedName>> PublishableTables(PgConn& conn,
                                                     const std::vector<QualifiedName>& tables) {
  std::vector<QualifiedName> out;
  for (const QualifiedName& t : tables) {
    PGB_ASSIGN_OR_RETURN(
        PgResult res,
        conn.Exec(fmt::format(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_partition_tree("
            "pg_catalog.to_regclass({})) p JOIN pg_catalog.pg_class c ON c.oid = p.relid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE p.isleaf ORDER BY 1, 2",
            conn.QuoteLiteral(QuoteQualified(t)))));
    if (res.rows() == 0) out.push_back(t);
    for (int r = 0; r < res.rows(); ++r) {
      out.push_back(QualifiedName{res.GetString(r, 0), res.GetString(r, 1)});
    }
  }
  return out;
}

}  // namespace

Result<std::vector<UserTable>> ListUserTables(PgConn& conn) {
  std::string sql =
      fmt::format(kTableSelect, kExtensionMember) + kUserSchema + " ORDER BY n.nspname, c.relname";
  PGB_ASSIGN_OR_RETURN(PgResult res, conn.Exec(sql));
  std::vector<UserTable> out;
  out.reserve(static_cast<size_t>(res.rows()));
  for (int r = 0; r < res.rows(); ++r) out.push_back(TableAt(res, r));
  return out;
}

Result<std::optional<UserTable>> FindTable(PgConn& conn, const QualifiedName& name) {
  std::string sql =
      fmt::format(kTableSelect, kExtensionMember) + "n.nspname = $1 AND c.relname = $2";
  PGB_ASSIGN_OR_RETURN(PgResult res, conn.ExecParams(sql, {name.schema, name.name}));
  if (res.rows() == 0) return std::optional<UserTable>();
  return std::optional<UserTable>(TableAt(res, 0));
}

Result<std::vector<QualifiedName>> ListPopulatedMatviews(PgConn& conn) {
  PGB_ASSIGN_OR_RETURN(PgResult res,
                       UserRelations(conn, "",
                                     fmt::format("c.relkind = 'm' AND c.relispopulated AND NOT {}",
                                                 kExtensionMember),
                                     "c.oid"));
  std::vector<QualifiedName> out;
  for (int r = 0; r < res.rows(); ++r) out.push_back({res.GetString(r, 0), res.GetString(r, 1)});
  return out;
}

Result<std::vector<Sequence>> ListSequences(PgConn& conn) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      UserRelations(
          conn,
          fmt::format(", {}, pg_catalog.has_sequence_privilege(c.oid, 'SELECT')", kExtensionMember),
          "c.relkind = 'S'", "n.nspname, c.relname"));
  std::vector<Sequence> out;
  for (int r = 0; r < res.rows(); ++r) {
    Sequence s;
    s.name = QualifiedName{res.GetString(r, 0), res.GetString(r, 1)};
    s.extension_member = res.GetBool(r, 2);
    s.readable = res.GetBool(r, 3);
    out.push_back(std::move(s));
  }
  return out;
}

Status ReadValues(PgConn& conn, std::vector<Sequence>* seqs) {
  for (const auto& s : *seqs) {
    if (!s.readable) {
      return Status::Error(
          ErrorCode::kPermission,
          fmt::format("sequence {} on {} is not readable", QuoteQualified(s.name), conn.label()),
          fmt::format("grant SELECT on the sequences to the role pgbaton connects to the {} as",
                      conn.label()));
    }
  }
  // One statement for all: a cutover reads them while writers wait. The ordinal keeps each
  // value with its sequence whatever order UNION ALL returns rows in.
  std::string sql;
  for (size_t i = 0; i < seqs->size(); ++i) {
    sql += fmt::format("{}SELECT {}, last_value::text, is_called FROM {}", i ? " UNION ALL " : "",
                       i, QuoteQualified((*seqs)[i].name));
  }
  if (sql.empty()) return Status::Ok();
  PGB_ASSIGN_OR_RETURN(PgResult res, conn.Exec(sql));
  for (int r = 0; r < res.rows(); ++r) {
    Sequence& s = (*seqs)[static_cast<size_t>(res.GetInt(r, 0))];
    s.last_value = res.GetString(r, 1);
    s.is_called = res.GetBool(r, 2);
  }
  return Status::Ok();
}

Result<std::vector<QualifiedName>> MissingOn(PgConn& target, const std::vector<Sequence>& seqs) {
  std::string values;
  for (size_t i = 0; i < seqs.size(); ++i) {
    values += fmt::format("{}({}, {})", i ? ", " : "", i,
                          target.QuoteLiteral(QuoteQualified(seqs[i].name)));
  }
  std::vector<QualifiedName> out;
  if (values.empty()) return out;
  PGB_ASSIGN_OR_RETURN(PgResult res,
                       target.Exec(fmt::format("SELECT i FROM (VALUES {}) v(i, name) WHERE "
                                               "pg_catalog.to_regclass(name) IS NULL ORDER BY i",
                                               values)));
  for (int r = 0; r < res.rows(); ++r)
    out.push_back(seqs[static_cast<size_t>(res.GetInt(r, 0))].name);
  return out;
}

Status WriteValues(PgConn& target, const std::vector<Sequence>& seqs) {
  std::string sql;
  for (const auto& s : seqs) {
    sql += fmt::format("SELECT pg_catalog.setval({}::pg_catalog.regclass, {}, {});",
                       target.QuoteLiteral(QuoteQualified(s.name)),
                       target.QuoteLiteral(s.last_value), s.is_called ? "true" : "false");
  }
  if (sql.empty()) return Status::Ok();
  Status st = target.Run(sql);
  if (!st.ok()) {
    return st.WithContext("copying sequence values to " + target.label())
        .WithHint("every source sequence must exist on the target (the schema copy creates them)");
  }
  return Status::Ok();
}

Result<bool> PublicationExists(PgConn& conn, const std::string& name) {
  // Simple protocol: `conn` may be a replication connection.
  PGB_ASSIGN_OR_RETURN(PgResult res,
                       conn.Exec("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = " +
                                 conn.QuoteLiteral(name)));
  return res.rows() > 0;
}

Result<bool> EnsurePublication(PgConn& conn, const std::string& name,
                               const std::vector<QualifiedName>& tables) {
  PGB_ASSIGN_OR_RETURN(bool exists, PublicationExists(conn, name));
  if (exists) return false;
  std::vector<QualifiedName> listed = tables;
  if (conn.ServerMajor() < 13 && !tables.empty()) {
    PGB_ASSIGN_OR_RETURN(listed, PublishableTables(conn, tables));
  }
  std::string sql = "CREATE PUBLICATION " + QuoteIdent(name);
  if (listed.empty()) {
    sql += " FOR ALL TABLES";
  } else {
    sql += " FOR TABLE ";
    for (size_t i = 0; i < listed.size(); ++i) sql += (i ? ", " : "") + QuoteQualified(listed[i]);
  }
  Status st = conn.Run(sql);
  if (!st.ok()) return st.WithContext(fmt::format("creating publication \"{}\"", name));
  return true;
}

Status DropPublication(PgConn& conn, const std::string& name) {
  return conn.Run("DROP PUBLICATION IF EXISTS " + QuoteIdent(name));
}

}  // namespace pgbaton::catalog
