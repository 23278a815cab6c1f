#include "tools/common/last_error.h"

#include <nlohmann/json.hpp>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/types.h"

namespace pgbaton::tools {

void RecordLastError(queue::WorkQueue* queue, const std::string& verb, const Status& status) {
  if (queue == nullptr || status.ok()) return;
  nlohmann::json e = {{"verb", verb},
                      {"code", std::string(ErrorCodeName(status.code()))},
                      {"exit_code", status.exit_code()},
                      {"message", ScrubSecrets(status.message())},
                      {"hint", ScrubSecrets(status.hint())},
                      {"time", PgTimestamp::Now().ToString()}};
  Status s = queue->PutMeta(kLastErrorMetaKey, e.dump());
  if (!s.ok()) LogWarning("could not record the last error in the queue", {{"error", s.message()}});
}

}  // namespace pgbaton::tools
