// The message layout of the Kafka backend: keys of the data topic (chunks by xid and subxid,
// commits by LSN, "a" aborts, "d" discards) and of the compacted meta topic ("r/<id>/<version>"
// relation descriptors, "m/<key>" metadata, "s/<name>" the queue's own settings), and the one
// error a malformed record gives. docs/reference/queue-format.md is the spec. Internal to queue/.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "common/status.h"
#include "common/types.h"
#include "queue/codec.h"

namespace pgbaton::queue::kafka {

// x<xid BE32><subxid BE32>: a chunk.
inline std::string ChunkKey(Xid xid, Xid subxid) {
  std::string k(1, 'x');
  PutBigEndian32(&k, xid.value);
  PutBigEndian32(&k, subxid.value);
  return k;
}
// c<commit lsn BE64>: a commit record.
inline std::string CommitMessageKey(Lsn lsn) {
  std::string k(1, 'c');
  PutBigEndian64(&k, lsn.value());
  return k;
}
// In the meta topic: a relation descriptor's key.
inline std::string RelationMetaKey(RelationId id, uint32_t version) {
  return fmt::format("r/{}/{}", id.value, version);
}

// kQueueCorrupt for the record `what` ("at offset 7 of kafka topic \"t\"", "commit 0/10").
inline Status CorruptAt(std::string_view what, std::string_view why) {
  return Status::Error(ErrorCode::kQueueCorrupt,
                       fmt::format("queue record {} is corrupt: {}", what, why),
                       "the queue cannot be read past this record; recreate it");
}

}  // namespace pgbaton::queue::kafka
