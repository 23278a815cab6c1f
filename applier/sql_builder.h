// SQL for each change, built from a TargetRelation: the statement's shape (which columns it
// writes and matches) is chosen per change, its text once per shape, and the apply session
// prepares each text once per connection. Pure functions: no I/O, golden-tested.
#pragma once

#include <string>
#include <vector>

#include "applier/target_relation.h"
#include "common/status.h"
#include "queue/record.h"

namespace pgbaton::applier {

// What a statement looks like; two changes with the same shape share one prepared statement.
struct StatementShape {
  enum class Kind : char { kInsert = 'I', kUpdate = 'U', kDelete = 'D' };
  Kind kind = Kind::kInsert;
  std::vector<int> write_cols;  // INSERT columns / UPDATE SET columns (source column indexes)
  std::vector<int> match_cols;  // WHERE col = $n (key, or every non-null old value for FULL)
  std::vector<int> null_cols;   // FULL: WHERE col IS NULL
  bool by_ctid = false;         // no key: locate one row by a ctid subquery (LIMIT 1)
  bool skip_conflicts = false;  // INSERT ... ON CONFLICT DO NOTHING (--on-conflict skip)
  // A compact unique key for the statement cache, e.g. "U|1,2|0|/c".
  std::string Key() const;
};

// A change turned into a shape plus its parameters (pointers into the change's tuples; nullptr
// is SQL NULL). Parameters are: write_cols from the new tuple, then match_cols from the old
// tuple (or the new one when the key did not change).
struct PlannedChange {
  StatementShape shape;
  std::vector<const std::string*> params;
  bool expect_row = false;  // UPDATE / DELETE: matching no row is a conflict
};

struct PlanFlags {
  bool skip_conflicts = false;  // --on-conflict skip: inserts use ON CONFLICT DO NOTHING
};

// Chooses the statement for one INSERT / UPDATE / DELETE. UPDATE sets only columns that may have
// changed: never an unchanged-TOAST column, not key columns when the key did not change, and
// with a full old row (identity FULL) only the columns whose value differs.
// Errors: kNoReplicaIdentity (UPDATE/DELETE on a relation with identity NOTHING),
// kUnsupportedType (a binary value), kProtocol (a tuple missing or of the wrong width).
Result<PlannedChange> PlanChange(const TargetRelation& rel, const queue::Change& change,
                                 const PlanFlags& flags);

// The SQL text of a shape, with $n::type casts from the descriptor's type names.
std::string BuildSql(const TargetRelation& rel, const StatementShape& shape);

// TRUNCATE of the given relations, with CASCADE / RESTART IDENTITY as the source sent them.
std::string BuildTruncateSql(const std::vector<const TargetRelation*>& rels, uint8_t flags);

// COPY ... FROM STDIN (text format) for the given columns.
std::string BuildCopySql(const TargetRelation& rel, const std::vector<int>& cols);
// Appends one row of COPY text format (tab separated, \N for NULL, escapes) to `out`.
void AppendCopyRow(const queue::Tuple& tuple, const std::vector<int>& cols, std::string* out);

// The columns an INSERT of `tuple` writes (all but target-generated ones).
std::vector<int> InsertColumns(const TargetRelation& rel, const queue::Tuple& tuple);

// Many updates of one relation in one statement, one row per array element:
//   UPDATE t SET a = v.a FROM unnest($1::type_a[], $2::type_key[]) AS v(a, key) WHERE t.key = v.key
// Parameters: one array literal per write column, then one per key column (see
// AppendArrayElement). Only for relations where CanBatch holds, and only for rows with
// distinct keys (each target row is matched by at most one element).
std::string BuildBatchUpdateSql(const TargetRelation& rel, const std::vector<int>& write_cols);
// Many inserts into one relation in one statement (pipelined, unlike COPY):
//   INSERT INTO t (a, b) SELECT * FROM unnest($1::type_a[], $2::type_b[])
// Parameters: one array literal per column in `cols`. Only where CanBatch holds.
std::string BuildBatchInsertSql(const TargetRelation& rel, const std::vector<int>& cols);
// The keys of `rel` (same parameters as the key part of BuildBatchUpdateSql) that match no row:
// for naming the missing row of a batch whose affected-row count fell short.
std::string BuildMissingKeysSql(const TargetRelation& rel);
// True when every column of `rel` has a type whose array literal uses ',' between elements and
// that is not itself an array (so `type[]` names its array type): then rows can be batched.
bool CanBatch(const TargetRelation& rel);
// The columns an update of `tuple` sets when the key did not change: every sent, non-generated
// column but the key.
std::vector<int> UpdateColumns(const TargetRelation& rel, const queue::Tuple& tuple);
// Appends `v` as one element of an array literal ("text" quoted and escaped, NULL bare), with a
// ',' first unless `first`.
void AppendArrayElement(const queue::Value& v, bool first, std::string* out);
// One array literal per column of `cols` (see AppendArrayElement), over `tuples` in order: the
// parameters of BuildBatchInsertSql, and of BuildBatchUpdateSql with the key columns last.
std::vector<std::string> ColumnArrays(const std::vector<int>& cols,
                                      const std::vector<const queue::Tuple*>& tuples);

// "(id)=(5)": the change's key (old key when it has one, else the new row's; every column for
// relations without a key), for conflict messages. Values are cut to 64 bytes each.
std::string DescribeKey(const TargetRelation& rel, const queue::Change& change);

}  // namespace pgbaton::applier
