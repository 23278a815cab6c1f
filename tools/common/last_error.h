// The last error of a long-running verb (copy, stream, apply, run), kept in the queue's metadata
// so that `pgbaton status` can show why a migration stopped after the process is gone.
#pragma once

#include <string>

#include "common/status.h"
#include "queue/work_queue.h"

namespace pgbaton::tools {

// The queue key where long-running verbs record their final error (a JSON object with verb,
// code, exit_code, message, hint, time; message and hint scrubbed of passwords).
inline constexpr const char* kLastErrorMetaKey = "status/last_error";

// Records `status` (when it is an error) as the queue's last error, for `pgbaton status`. Best
// effort: a failure to write is logged as a warning, never returned. Not for read-only queues.
void RecordLastError(queue::WorkQueue* queue, const std::string& verb, const Status& status);

}  // namespace pgbaton::tools
