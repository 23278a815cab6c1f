#include "common/status.h"

namespace pgbaton {

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = std::string(context) + ": " + message_;
  return s;
}

Status Status::WithHint(std::string hint) const {
  Status s = *this;
  s.hint_ = std::move(hint);
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out = message_;
  if (!hint_.empty()) out += "\nhint: " + hint_;
  return out;
}

}  // namespace pgbaton
