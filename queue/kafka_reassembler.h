// Reassembles transactions from the Kafka data topic, where the chunks of open transactions
// interleave: chunks wait by xid until their commit record (the transaction is ready), an abort
// (of a subtransaction or the whole transaction) or a discard marker drops them. Used by the
// cursor and, at open, by the writer to rebuild its open transactions. Internal to queue/.
// Not thread-safe: one reader at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "queue/codec.h"
#include "queue/kafka_client.h"

namespace pgbaton::queue::kafka {

// A chunk seen in the topic, its bytes kept while the cache budget allows.
struct PendingChunk {
  int64_t offset = -1;
  uint32_t subxid = 0;
  bool cached = false;
  std::string bytes;  // the record, when cached
};

// A committed transaction: its commit record (at `offset`) and its chunks in topic order.
struct ReadyTxn {
  StoredCommit commit;
  int64_t offset = -1;
  std::vector<PendingChunk> chunks;
};

class TxnReassembler {
 public:
  // Commits at or before `skip_upto` are dropped with their chunks (a cursor's start, or a
  // resent commit). Chunk bytes are kept up to `budget` bytes in all; past it only offsets.
  TxnReassembler(std::string topic, Lsn skip_upto, size_t budget)
      : topic_(std::move(topic)), skip_upto_(skip_upto), budget_(budget) {}

  // Feeds the next message of the topic; returns the transaction its commit completes, if any.
  // May move `m->value` into the cache. Errors: kQueueCorrupt naming the offset, kQueueFormat.
  Result<std::optional<ReadyTxn>> Feed(Message* m);
  // The chunks still waiting for their commit, by xid.
  const std::unordered_map<uint32_t, std::vector<PendingChunk>>& pending() const {
    return pending_;
  }

 private:
  std::string topic_;
  Lsn skip_upto_;
  size_t budget_;
  size_t cached_ = 0;
  std::unordered_map<uint32_t, std::vector<PendingChunk>> pending_;
};

}  // namespace pgbaton::queue::kafka
