// Builders of queue records for the queue tests: relations, changes of every kind, chunks.
#pragma once

#include <string>

#include "queue/record.h"
#include "queue/work_queue.h"

namespace pgbaton::queue::testing {

inline Value Text(std::string s) { return Value{ValueKind::kText, std::move(s)}; }

inline RelationDescriptor MakeRelation(uint32_t id, uint32_t version = 1) {
  RelationDescriptor r;
  r.id = RelationId{id};
  r.version = version;
  r.schema = "public";
  r.name = "t" + std::to_string(id);
  r.identity = ReplicaIdentity::kDefault;
  r.columns = {{"id", {"pg_catalog", "int4"}, 23, -1, true},
               {"v", {"pg_catalog", "text"}, 25, -1, false}};
  return r;
}

inline Change MakeInsert(uint32_t rel, int64_t id, std::string v) {
  Change c;
  c.kind = ChangeKind::kInsert;
  c.relation = RelationId{rel};
  c.relation_version = 1;
  c.new_tuple = Tuple{Text(std::to_string(id)), Text(std::move(v))};
  return c;
}

// A transaction with `changes` inserts into relation 1 as one chunk, committed at `lsn`.
inline void AddTxn(RecordBatch* b, uint32_t xid, uint64_t lsn, int changes = 2) {
  ChangeChunk chunk;
  chunk.xid = Xid{xid};
  chunk.subxid = Xid{xid};
  for (int i = 0; i < changes; ++i)
    chunk.changes.push_back(MakeInsert(1, i, "x" + std::to_string(lsn)));
  b->chunks.push_back(std::move(chunk));
  CommitRecord c;
  c.commit_lsn = Lsn(lsn);
  c.end_lsn = Lsn(lsn + 8);
  c.xid = Xid{xid};
  c.commit_time = PgTimestamp{static_cast<int64_t>(lsn) * 1000};
  c.change_count = static_cast<uint64_t>(changes);
  c.chunk_count = 1;
  b->commits.push_back(std::move(c));
}

}  // namespace pgbaton::queue::testing
