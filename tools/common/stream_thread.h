// The decoder on a thread of its own, for the verbs that stream while they do something else:
// `run` applies meanwhile, `migrate` copies and then applies. And the position the applier's
// --stop-at compares with when nothing more commits.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/types.h"
#include "decoder/stream.h"
#include "queue/work_queue.h"
#include "tools/common/running_xacts.h"

namespace pgbaton::tools {

// Streams the slot and publication named `name` on `source` into `queue` (decoder::RunStream,
// which reconnects on its own) from construction until Stop(), asking a 16+ source for a
// running-transactions record every second meanwhile (RunningXactsNudge), so that the slot
// keeps about a second of WAL. When the stream ends with an error
// it calls RequestStop() (tools/common/signals.h), so that the verb's other part drains and stops.
// `queue` must outlive the thread.
class StreamThread {
 public:
  // `metrics`: the series to count into (its database's in a cluster); null: CatalogMetrics().
  StreamThread(std::string source, std::string name, queue::WorkQueue* queue, int batch_delay_ms,
               const metrics::Catalog* metrics = nullptr);
  ~StreamThread() { Stop(); }
  StreamThread(const StreamThread&) = delete;
  StreamThread& operator=(const StreamThread&) = delete;

  // Asks the stream to stop (it appends what it holds and confirms it) and joins. Idempotent.
  void Stop();
  // Whether the stream has ended on its own (an error) while it should run.
  bool ended() const { return ended_.load(); }
  // After Stop() (or once ended()): how the stream ended, and what it did.
  const Status& status() const { return status_; }
  const decoder::StreamStats& stats() const { return stats_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> ended_{false};
  Status status_;
  decoder::StreamStats stats_;
  std::thread thread_;
  RunningXactsNudge nudge_;
};

// For applier::ApplierOptions::source_position: the furthest of the queue's last end LSN and the
// confirmed_flush_lsn of slot `slot` on `source` (how far the decoder read the source, even past
// the last transaction). Keeps one source connection, reopened after a failure, which then
// answers with the queue's position alone. Call from one thread.
std::function<Lsn()> SlotReadPosition(std::string source, std::string slot,
                                      queue::WorkQueue* queue);

}  // namespace pgbaton::tools
