// A generated schema for the quoting test: schemas, tables, columns, types (enum, composite,
// domain, range, arrays of each), sequences, indexes and partitions whose names are drawn from
// the hard cases (spaces, quotes, dots, backslashes, mixed case, reserved words, non-ASCII, the
// 63-byte limit), and rows of unusual values of many built-in types. Everything is chosen by a
// seeded generator: the same seed and source major give the same schema and the same statements.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/sql_ident.h"

namespace pgbaton::schema_testing {

struct GenColumn {
  std::string name;
  std::string type_sql;               // as written in CREATE TABLE
  std::vector<std::string> literals;  // SQL expressions of this type (NULL is added by the writer)
  bool big = false;                   // values large enough to be TOASTed
};

struct GenTable {
  QualifiedName name;
  std::string key;                 // the bigint key column (primary key, or partition key part)
  std::vector<GenColumn> columns;  // not counting the key
  bool partitioned = false;        // partitioned by list on `part`; rows go to its partitions
  std::vector<QualifiedName> partitions;
  QualifiedName sequence;       // the key's default: nextval of this sequence
  std::string unique_not_null;  // a column identifying rows (REPLICA IDENTITY USING INDEX)
};

class SchemaGenerator {
 public:
  // `source_major` decides which values exist (multiranges and numeric infinity from 14).
  SchemaGenerator(uint64_t seed, int source_major);

  // The DDL that creates everything, one statement per entry.
  const std::vector<std::string>& ddl() const { return ddl_; }
  // Tables that hold rows (partitions, not their parent), for digests.
  std::vector<QualifiedName> LeafTables() const;
  std::vector<QualifiedName> Sequences() const;
  const std::vector<GenTable>& tables() const { return tables_; }
  // The composite type (in the schema named with a space).
  const QualifiedName& composite() const { return composite_; }

  // One random write: an insert, an update of some columns (sometimes leaving a TOASTed value
  // unchanged, sometimes changing the key) or a delete, on a random table.
  std::string RandomWrite();
  // An INSERT of a random row into `t`.
  std::string Insert(const GenTable& t);

 private:
  std::string Pick(const std::vector<std::string>& v);
  // A name not yet used in `scope` (one scope per schema for relations and types, one per table
  // for columns), from the hard cases first.
  std::string NewName(const std::string& scope);
  std::string Value(const GenColumn& c);
  void AddTypes();
  void AddTable(int index);

  std::mt19937_64 rng_;
  int major_;
  std::vector<std::string> schemas_;
  std::vector<std::string> ddl_;
  std::vector<GenTable> tables_;
  std::vector<QualifiedName> sequences_;
  QualifiedName composite_;
  std::vector<GenColumn> type_columns_;  // columns of the user-defined types, for every table
  std::map<std::string, std::vector<std::string>> used_;
};

// Names that have broken SQL generators: the pool the generator draws from.
const std::vector<std::string>& HardNames();

}  // namespace pgbaton::schema_testing
