// A deterministic stream of transactions for the queue crash tests: transaction k has a known
// commit LSN, xid, chunk count and content, so a reader can check that each one is whole.
// Every fourth transaction is written over two appends (its first chunk before its commit).
#pragma once

#include <fmt/format.h>

#include <string>

#include "queue/work_queue.h"

namespace pgbaton::queue::crash {

constexpr uint64_t kBaseLsn = 0x1'0000'0000ull;
constexpr uint64_t kLsnStep = 0x100;

inline Lsn LsnOf(uint64_t k) { return Lsn(kBaseLsn + k * kLsnStep); }
inline uint64_t IndexOf(Lsn lsn) { return (lsn.value() - kBaseLsn) / kLsnStep; }
inline uint32_t ChunksOf(uint64_t k) { return 1 + k % 4; }
inline bool SpansAppends(uint64_t k) { return k % 4 == 3; }

inline ChangeChunk ChunkOf(uint64_t k, uint32_t seq) {
  ChangeChunk c;
  c.xid = c.subxid = Xid{static_cast<uint32_t>(k)};
  c.seq = seq;
  for (int row = 0; row < 5; ++row) {
    Change ch;
    ch.kind = ChangeKind::kInsert;
    ch.relation = RelationId{16384};
    ch.relation_version = 1;
    ch.new_tuple =
        Tuple{Value{ValueKind::kText, std::to_string(row)},
              Value{ValueKind::kText, fmt::format("k{}-c{}-r{}-{:x>200}", k, seq, row, "")}};
    c.changes.push_back(std::move(ch));
  }
  return c;
}

inline CommitRecord CommitOf(uint64_t k) {
  CommitRecord c;
  c.xid = Xid{static_cast<uint32_t>(k)};
  c.commit_lsn = LsnOf(k);
  c.end_lsn = Lsn(LsnOf(k).value() + 0x10);
  c.change_count = 5 * ChunksOf(k);
  c.chunk_count = ChunksOf(k);
  return c;
}

}  // namespace pgbaton::queue::crash
