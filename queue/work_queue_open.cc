#include "queue/work_queue.h"

namespace pgbaton::queue {

Result<std::unique_ptr<WorkQueue>> WorkQueue::Open(const QueueOptions&) {
  return Status::Error(ErrorCode::kInternal, "the work queue is not built yet");
}

}  // namespace pgbaton::queue
