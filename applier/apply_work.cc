#include "applier/apply_work.h"

namespace pgbaton::applier {

size_t ApproxBytes(const queue::Change& change) {
  size_t n = sizeof(queue::Change) + 32;
  for (const auto* t : {&change.old_tuple, &change.new_tuple}) {
    if (!t->has_value()) continue;
    for (const auto& v : **t) n += sizeof(queue::Value) + v.data.size();
  }
  return n + change.truncated.size() * 8 + change.message_content.size();
}

}  // namespace pgbaton::applier
