#include "queue/kafka_queue.h"

namespace pgbaton::queue {

Result<std::unique_ptr<WorkQueue>> OpenKafkaQueue(const QueueOptions&) {
  return Status::Error(ErrorCode::kKafka, "the kafka queue backend is not built yet");
}

}  // namespace pgbaton::queue
