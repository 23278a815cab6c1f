// A source relation descriptor matched against the target's catalog: which target column each
// source column goes to, how to cast it, the replica-identity key, and the target's unique
// indexes (for write sets). Built once per (relation, descriptor version) by the TargetCatalog
// and then shared read-only between apply sessions.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "queue/record.h"

namespace pgbaton::applier {

struct TargetColumn {
  std::string name;         // unquoted, as on the source and target
  std::string quoted_name;  // "Name" ready for SQL
  // The type to cast a parameter to, ready for SQL: rendered by the target (quote_ident of the
  // schema and name of the type it resolved, e.g. pg_catalog.int4, "Shop Data".address); without
  // a catalog, both parts of the descriptor's type quoted by QuoteIdent.
  std::string cast;
  bool batchable = true;   // `cast`[] exists and parses as a ',' separated array (batched SQL)
  bool skip = false;       // generated on the target: never written
  bool is_key = false;     // part of the source replica identity
  bool comparable = true;  // has an equality operator (FULL identity matching uses only these)
};

struct TargetRelation {
  queue::RelationDescriptor source;   // the descriptor this was built for
  std::string qualified_name;         // "schema.table" unquoted, for messages and meta keys
  std::string quoted_name;            // "schema"."table" for SQL
  std::vector<TargetColumn> columns;  // parallel to source.columns
  bool partitioned = false;           // a partitioned table on the target (relkind 'p')
  // Source column indexes of each unique index on the target (primary key included), for write
  // sets; an index with a column the source does not send is left out.
  std::vector<std::vector<int>> unique_indexes;
  // Source column indexes that identify a row: the replica identity key for DEFAULT / INDEX;
  // empty for FULL and NOTHING (then rows are matched on all old values).
  std::vector<int> key_columns;

  bool HasKey() const { return !key_columns.empty(); }
};

using TargetRelationPtr = std::shared_ptr<const TargetRelation>;

// True for an UPDATE that keeps its key (no old tuple), sends every column, and whose relation's
// only unique index is that key (identity DEFAULT / USING INDEX): such updates of one row can be
// merged, and those of different rows commute, within a target transaction (user triggers and
// foreign keys are off there). The apply session merges them and the scheduler may defer them.
bool Mergeable(const TargetRelation& rel, const queue::Change& change);

// Builds a TargetRelation from a descriptor alone, with no catalog lookups: every column is
// written, no unique index beyond the replica identity; every name and both parts of every type
// double-quoted (QuoteIdent). For tests and the SQL golden files.
TargetRelation DescribeWithoutCatalog(const queue::RelationDescriptor& d, bool partitioned = false);

// Looks the descriptor's relation up on the target by schema and name and matches columns by
// name and type (schema, typname and typmod, as the decoder names source types). Each column's
// cast is rendered by the target from the type it resolved (quote_ident on both parts). `versions`
// are the other descriptor versions of the same relation that the queue holds (any order, may
// include `d`): they tell DDL the target has not seen yet from DDL the operator already ran on
// the target while changes of the older shape `d` are still queued (those apply; a column
// dropped since is not written).
// Errors: kNotFound (no such table; hint: create the schema with pg_dump --schema-only),
// kSchemaChanged naming the relation, the column and the ALTER TABLE to run on the target: a
// source column missing on the target, a column whose type differs (both types named), a target
// column that an earlier version had and `d` has not (dropped on the source). A target column
// the source never sent (not generated) is allowed and logged once as a warning: it may have
// been added on the target ahead of the source. kNoReplicaIdentity (identity NOTHING is allowed
// only for insert-only use) is reported when a change needs a key, not here.
// Not thread-safe (uses `conn`).
Result<TargetRelation> LoadTargetRelation(
    PgConn& conn, const queue::RelationDescriptor& d,
    const std::vector<queue::RelationDescriptor>& versions = {});

}  // namespace pgbaton::applier
