// WorkQueue::Open: picks the backend from the options.
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

}  // namespace pgbaton::queue
