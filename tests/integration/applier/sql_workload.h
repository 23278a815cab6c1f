// A workload for the applier's integration tests that needs no decoder: statements run for real
// on a "source" database, and the rows they touched (read back as PostgreSQL prints them) become
// queue records, with the markers pgoutput would send (old key / old row, unchanged TOAST).
// The tables cover every replica identity, a partitioned table, a generated column, a TOASTed
// column and a unique secondary index whose values move between rows.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "queue/work_queue.h"

namespace pgbaton::testing {

// The schema, for the source and the target (run on both).
std::string WorkloadSchema();
// The tables, for comparisons.
std::vector<std::string> WorkloadTables();

class SqlWorkload {
 public:
  // `source` is a connection to the source database with the schema in place.
  SqlWorkload(PgConn* source, uint32_t seed) : source_(source), rng_(seed) {}

  // Runs `count` random source transactions (1 to 6 statements each) and returns them as one
  // batch of records: relation descriptors first, then chunks and commits with increasing
  // commit LSNs. `conflict_heavy` concentrates writes on few keys and unique values.
  Result<queue::RecordBatch> Run(int count, bool conflict_heavy);
  // One transaction that truncates `table` (with the given pgoutput flags).
  Result<queue::RecordBatch> Truncate(const std::string& table, uint8_t flags);

  Lsn last_lsn() const { return Lsn(next_lsn_ - 0x100); }

 private:
  struct Op;
  Result<queue::RelationDescriptor> Describe(const std::string& table);
  Status RunOp(const std::string& kind, bool conflict_heavy, std::vector<queue::Change>* out);
  Result<std::vector<std::vector<std::optional<std::string>>>> Rows(const std::string& sql);
  queue::Tuple ToTuple(const std::vector<std::optional<std::string>>& row);
  int Rand(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string BigValue();

  PgConn* source_;
  std::mt19937 rng_;
  uint64_t next_lsn_ = 0x1000000;
  uint32_t xid_ = 1000;
  int new_keys_ = 0;  // fresh key values for key-changing updates
  std::vector<queue::RelationDescriptor> described_;
  std::vector<queue::RelationDescriptor> pending_relations_;
};

}  // namespace pgbaton::testing
