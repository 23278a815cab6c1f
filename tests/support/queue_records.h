// Builders of queue records for the queue tests and benchmarks: relations, changes, chunks and
// commits, and the bytes of a relation record as a format-1 build wrote it. Header-only, no
// GoogleTest (the benchmarks use it too); reading a queue back is ReadAll in
// queue/work_queue_conformance.h.
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

// Chunk `seq` of transaction `xid` (of its subtransaction `subxid`, 0: the top level): one
// insert into relation 1 whose value is `v`.
inline ChangeChunk MakeChunk(uint32_t xid, uint32_t seq, std::string v, uint32_t subxid = 0) {
  ChangeChunk c;
  c.xid = Xid{xid};
  c.subxid = Xid{subxid ? subxid : xid};
  c.seq = seq;
  c.changes = {MakeInsert(1, seq, std::move(v))};
  return c;
}

// The commit of `xid` at `lsn`, ending `end_offset` bytes later. Counts and time are left 0:
// the backends count the chunks they hold.
inline CommitRecord MakeCommit(uint32_t xid, uint64_t lsn, uint64_t end_offset = 8) {
  CommitRecord c;
  c.xid = Xid{xid};
  c.commit_lsn = Lsn(lsn);
  c.end_lsn = Lsn(lsn + end_offset);
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
  CommitRecord c = MakeCommit(xid, lsn);
  c.commit_time = PgTimestamp{static_cast<int64_t>(lsn) * 1000};
  c.change_count = static_cast<uint64_t>(changes);
  c.chunk_count = 1;
  b->commits.push_back(std::move(c));
}

// The bytes of relation 7 version 1 as a format-1 build wrote them (built by hand from that
// layout): columns "id" pg_catalog.int4 (the key) and "home" of type "Shop Data.address" as one
// "schema.name" string, which format 1 did not quote.
inline std::string FormatOneRelation7() {
  return std::string(
      "\x01\x03\x00\xb1\x25\x56\x73\x07\x01\x06\x70\x75\x62\x6c\x69\x63"
      "\x01\x74\x64\x02\x02\x69\x64\x0f\x70\x67\x5f\x63\x61\x74\x61\x6c"
      "\x6f\x67\x2e\x69\x6e\x74\x34\x17\x01\x01\x04\x68\x6f\x6d\x65\x11"
      "\x53\x68\x6f\x70\x20\x44\x61\x74\x61\x2e\x61\x64\x64\x72\x65\x73"
      "\x73\xf4\x80\x01\x01\x00",
      70);
}

}  // namespace pgbaton::queue::testing
