// The streaming loop: reads the slot, turns the pgoutput stream into queue records and appends
// them to the WorkQueue in groups (group commit), confirming to the slot only what the queue
// holds durably. Replies to keepalives, reconnects with backoff after retryable errors, resumes
// from the queue's durable position after a restart, and stops cleanly on a stop flag.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics_catalog.h"
#include "common/status.h"
#include "common/types.h"
#include "decoder/replication.h"
#include "decoder/type_resolver.h"
#include "queue/work_queue.h"

namespace pgbaton::decoder {

// One started replication session: CopyData messages in, standby status out.
class ReplicationSource {
 public:
  virtual ~ReplicationSource() = default;
  // The next CopyData message ('w' or 'k' framing), nullopt after `wait` without one. The bytes
  // stay valid until the next call. Errors: kConnection (retryable) and the server's errors.
  virtual Result<std::optional<std::string_view>> Receive(std::chrono::milliseconds wait) = 0;
  virtual Status SendStatus(Lsn write, Lsn flush, bool reply_requested) = 0;
  // Checks that every relation of `streamed` (source OIDs the queue holds descriptors of) that
  // still exists on the source is still in the publication: a table removed from it (ALTER
  // PUBLICATION ... DROP TABLE) silently stops being streamed. Errors: kPublicationMissing naming
  // the publication and the relations. A failure to look (connection) is not an error: the next
  // check tries again. The default checks nothing.
  virtual Status CheckPublication(const std::vector<RelationId>& streamed) {
    (void)streamed;
    return Status::Ok();
  }
};

// Connects and starts streaming at `start` (Invalid: where the slot stands).
using SourceFactory = std::function<Result<std::unique_ptr<ReplicationSource>>(Lsn start)>;

// The factory for a real server: a replication connection to `conninfo`, slot `slot`, pgoutput
// with DefaultPgOutputOptions(server major, `publication`). Before starting it checks that the
// slot and the publication exist (kSlotMissing, kPublicationMissing).
SourceFactory PgSourceFactory(std::string conninfo, std::string slot, std::string publication);

struct StreamOptions {
  size_t chunk_bytes = 1 << 20;                   // bound of one ChangeChunk
  size_t batch_max_bytes = 8 << 20;               // append when the batch holds this much
  size_t batch_max_commits = 2000;                // ... or this many transactions
  std::chrono::milliseconds batch_max_delay{50};  // ... or its oldest commit waited this long
  // ... or, once its oldest commit waited this long, as soon as the server has sent nothing more
  // for now: an idle stream is appended within a few ms, a busy one in batches (freshness
  // without an append per transaction under a trickle, group commit under load). A value not
  // below batch_max_delay turns it off.
  std::chrono::milliseconds idle_flush_delay{5};
  std::chrono::milliseconds status_interval{10000};  // standby status at least this often
  // While nothing waits to be appended and no transaction is open, the slot is confirmed up to
  // what the server has sent (after recording that position in the queue), at most this often:
  // a source whose writes all go to other databases, or to tables not published, otherwise
  // keeps its slot, and the WAL it holds, at the last transaction decoded. 0: never.
  std::chrono::milliseconds idle_confirm_interval{1000};
  std::chrono::milliseconds initial_backoff{200};  // first wait before reconnecting
  std::chrono::milliseconds max_backoff{10000};    // the wait doubles up to this
  int max_consecutive_failures = 30;               // give up after this many (0: never)
  // ReplicationSource::CheckPublication at the start of each session and this often (0: never).
  std::chrono::milliseconds publication_check_interval{5000};
  // The series the stream counts into: its database's in a cluster migration; null:
  // metrics::CatalogMetrics().
  const metrics::Catalog* metrics = nullptr;
};

struct StreamStats {
  uint64_t transactions = 0;  // committed transactions appended
  uint64_t skipped = 0;       // resent transactions dropped (already in the queue)
  uint64_t appends = 0;       // WorkQueue::Append calls
  uint64_t messages = 0;      // pgoutput messages parsed
  uint64_t reconnects = 0;
  Lsn confirmed;  // the last flush position sent to the slot
};

// Runs until `*stop` becomes true (then returns OK after appending what it holds) or a
// non-retryable error. Calls queue->DiscardUncommitted() first and after each reconnect, starts
// at queue->LastEndLsn() and drops transactions with commit LSN <= queue->LastCommitLsn().
// Errors: kSlotMissing, kPublicationMissing (also for a streamed table removed from the
// publication), kServerConfig, kProtocol (naming the LSN), queue
// errors; kConnection after max_consecutive_failures. `stats` may be null; it is written by the
// loop's thread only.
Status RunStream(queue::WorkQueue* queue, TypeResolver* types, const SourceFactory& factory,
                 const StreamOptions& options, const std::atomic<bool>* stop,
                 StreamStats* stats = nullptr);

}  // namespace pgbaton::decoder
