// The source catalogue: one definition of what pgbaton reads from a database's catalog and
// creates there for every verb — the user tables, the sequences and their values, the
// migration's publication — so that copy, verify, preflight, cutover and stream agree on what
// "a user table" is. Names come back raw (unquoted, schema and name apart); quote them with
// common/sql_ident.h. Every function runs on a connection the caller owns, inside whatever
// transaction or snapshot it has open (copy lists tables inside its exported snapshot); like
// PgConn itself, none may be called on one connection from two threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/sql_ident.h"
#include "common/status.h"

namespace pgbaton::catalog {

// A table (ordinary or partitioned) in a user schema.
struct UserTable {
  uint32_t oid = 0;
  QualifiedName name;
  QualifiedName root;             // the partition root (the table itself when not a partition)
  std::string display;            // schema.name as the server quotes it (quote_ident), for messages
  bool partitioned = false;       // relkind 'p': a parent that holds no rows of its own
  char persistence = 'p';         // pg_class.relpersistence: 'p' permanent, 'u' unlogged
  bool extension_member = false;  // created by CREATE EXTENSION (which makes it on a target)
  char replica_identity = 'd';    // pg_class.relreplident
  bool has_primary_key = false;
  bool has_identity_index = false;  // relreplident 'i' and the index is there
  std::string int_key;  // a single-column integer primary key ("" if none), for key ranges
  uint64_t bytes = 0;   // heap size on disk

  // "schema.name" unquoted: the key of queue metadata, filters and sets.
  std::string Key() const { return name.schema + "." + name.name; }
  // Whether updates and deletes on it can be replicated (what pgoutput needs to send them).
  bool HasIdentity() const {
    return replica_identity == 'f' || (replica_identity == 'i' && has_identity_index) ||
           (replica_identity == 'd' && has_primary_key);
  }
  // Whether it holds rows that logical decoding streams: a permanent leaf table.
  bool Streamed() const { return !partitioned && persistence == 'p'; }
};

// Every table in a user schema (not pg_catalog, information_schema, pg_toast*, pg_temp*):
// ordinary and partitioned, permanent and unlogged, extension members marked; ordered by
// schema, name. Callers pick by the fields. Errors: the connection's (kConnection,
// kPermission, ...).
Result<std::vector<UserTable>> ListUserTables(PgConn& conn);

// The ordinary or partitioned table `name` in any schema, or nullopt. Errors: the connection's.
Result<std::optional<UserTable>> FindTable(PgConn& conn, const QualifiedName& name);

// Materialized views in a user schema (not an extension's) that are populated, oldest first.
// Errors: the connection's.
Result<std::vector<QualifiedName>> ListPopulatedMatviews(PgConn& conn);

// A sequence in a user schema and, once read, its state.
struct Sequence {
  QualifiedName name;
  bool extension_member = false;
  bool readable = true;    // the role has SELECT on it
  std::string last_value;  // as `SELECT last_value FROM seq` gives it (set by ReadValues)
  bool is_called = false;  // false: the next nextval returns last_value itself
};

// Every sequence in a user schema (extension members marked), ordered by schema, name; values
// not read. Errors: the connection's.
Result<std::vector<Sequence>> ListSequences(PgConn& conn);

// Reads the current value of every sequence in `seqs` in one round trip. Sequences are not
// transactional: inside a snapshot too, this is the value now. Errors: kPermission naming the
// first one the role may not read (checked before reading), the connection's.
Status ReadValues(PgConn& conn, std::vector<Sequence>* seqs);

// The sequences of `seqs` that `target` does not have, in order. Errors: the connection's.
Result<std::vector<QualifiedName>> MissingOn(PgConn& target, const std::vector<Sequence>& seqs);

// Sets every sequence of `seqs` on `target` to its value read on the source (setval with
// is_called), in one round trip. Errors: the target's, with context (a sequence that does not
// exist there is an error: filter with MissingOn first).
Status WriteValues(PgConn& target, const std::vector<Sequence>& seqs);

// Whether publication `name` exists. Uses the simple protocol, so `conn` may be a replication
// connection. Errors: the connection's.
Result<bool> PublicationExists(PgConn& conn, const std::string& name);

// Creates publication `name` FOR ALL TABLES, or FOR TABLE `tables` when not empty, unless it
// exists. Returns true if it was created. On a PostgreSQL 12 source a partitioned table in
// `tables` is published as its leaf partitions of today (12 cannot publish a partitioned table;
// a partition attached later is not in the publication). Errors: kPermission, kNotFound (a
// table), with the publication named.
Result<bool> EnsurePublication(PgConn& conn, const std::string& name,
                               const std::vector<QualifiedName>& tables);

// Drops publication `name` if it exists. Errors: the connection's.
Status DropPublication(PgConn& conn, const std::string& name);

}  // namespace pgbaton::catalog
