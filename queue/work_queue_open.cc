// WorkQueue::Open: picks the backend from the options. And the default of CommitLsns.
#include "queue/kafka_queue.h"
#include "queue/rocksdb_queue.h"
#include "queue/work_queue.h"

namespace pgbaton::queue {

Result<std::unique_ptr<WorkQueue>> WorkQueue::Open(const QueueOptions& options) {
  if (!options.kafka_brokers.empty()) return OpenKafkaQueue(options);
  if (options.dir.empty()) {
    return Status::Error(ErrorCode::kUsage, "no queue given",
                         "pass --queue-dir DIR, or --kafka-brokers and --kafka-topic");
  }
  return OpenRocksDbQueue(options);
}

Result<std::vector<Lsn>> WorkQueue::CommitLsns(Lsn after, size_t max) {
  PGB_ASSIGN_OR_RETURN(std::unique_ptr<QueueCursor> cursor, ReadFrom(after));
  std::vector<Lsn> out;
  while (out.size() < max) {
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<TransactionReader> txn,
                         cursor->Next(std::chrono::milliseconds(0)));
    if (txn == nullptr) break;
    out.push_back(txn->commit().commit_lsn);
  }
  return out;
}

}  // namespace pgbaton::queue
