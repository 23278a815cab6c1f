// The WorkQueue contract (queue/work_queue.h) as one value-parameterised GoogleTest suite,
// WorkQueueConformance, that every backend runs: RocksDB in-process
// (tests/unit/queue/rocksdb_queue_test.cc, label unit) and Kafka against a real one-node broker
// (tests/integration/queue/kafka/kafka_queue_test.cc, label integration). A backend supplies a
// QueueBackend; its own tests keep only what is not contract (disk space, the writer's lock, a
// broker restart). `ctest -R WorkQueueConformance` runs the suite for both. Also ReadAll, which
// reads a whole queue back.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"
#include "queue/work_queue.h"

namespace pgbaton::queue::testing {

// One backend under test: where its queue lives, and the few raw writes a test needs to leave the
// storage as another build would. One object per test; Start is called before anything else.
class QueueBackend {
 public:
  virtual ~QueueBackend() = default;
  // Prepares an empty place for the test's queue (a temporary directory; a broker).
  virtual Status Start() = 0;
  // The options of the test's queue, for a writer (read_only false).
  virtual QueueOptions Options() const = 0;
  // Options, read-only, of a queue that was never created, in the same place.
  virtual QueueOptions MissingQueueOptions() const = 0;
  // While no queue is open: stores `version` as the queue's format version.
  virtual Status SetStoredFormatVersion(const std::string& version) = 0;
  // While no queue is open: the format version the queue has stored.
  virtual Result<std::string> StoredFormatVersion() = 0;
  // While no queue is open: stores `bytes` as the record of relation `id` version `version`.
  virtual Status PutStoredRelation(RelationId id, uint32_t version, const std::string& bytes) = 0;
};

// The suite's parameter: a backend's name and how to make one. Instantiated with the name as the
// prefix too: GoogleTest names RocksDb/WorkQueueConformance.ResentCommitIsSkipped/0, and ctest
// (which puts the printed parameter for the index)
// RocksDb/WorkQueueConformance.ResentCommitIsSkipped/RocksDb.
struct BackendParam {
  const char* name;
  std::unique_ptr<QueueBackend> (*make)();
};
inline void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }

class WorkQueueConformance : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override;

  QueueOptions Options(bool read_only = false) const;
  // Opens the test's queue; a failure fails the test and returns null.
  std::unique_ptr<WorkQueue> OpenWriter();
  std::unique_ptr<WorkQueue> OpenReader();

  std::unique_ptr<QueueBackend> backend_;
};

// A committed transaction as read back: its commit and every chunk.
struct ReadTxn {
  CommitRecord commit;
  std::vector<ChangeChunk> chunks;
};

// Every committed transaction after `after`, in order, as a cursor reads it without waiting.
// A read error fails the test (and ends the list there).
std::vector<ReadTxn> ReadAll(WorkQueue* q, Lsn after = Lsn::Invalid());

}  // namespace pgbaton::queue::testing
