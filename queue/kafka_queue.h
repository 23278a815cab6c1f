// The Kafka backend of WorkQueue: one topic with one partition per migration (source order), an
// idempotent producer with acks=all, and a compacted "<topic>.meta" topic for relation
// descriptors and metadata. Internal to queue/: callers use WorkQueue::Open.
// Layout and guarantees: docs/reference/queue-format.md.
#pragma once

#include <memory>

#include "queue/work_queue.h"

namespace pgbaton::queue {

// Opens the queue on options.kafka_brokers / options.kafka_topic, creating both topics if missing.
// Errors: kKafka (unreachable broker within the timeout, refused request), kQueueFormat,
// kQueueMismatch, kUsage (no topic).
Result<std::unique_ptr<WorkQueue>> OpenKafkaQueue(const QueueOptions& options);

}  // namespace pgbaton::queue
