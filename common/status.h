// Status and Result<T>: how every library reports failure. No exceptions cross a library boundary.
// A Status carries a code from the catalogue (error_code.h), a lowercase message that names the
// object ("slot \"pgbaton\" on source: ..."), an optional hint, and whether retrying may help.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "common/error_code.h"

namespace pgbaton {

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok

  static Status Ok() { return Status(); }
  static Status Error(ErrorCode code, std::string message, std::string hint = {},
                      bool retryable = false) {
    Status s;
    s.code_ = code;
    s.message_ = std::move(message);
    s.hint_ = std::move(hint);
    s.retryable_ = retryable;
    return s;
  }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }
  bool retryable() const { return retryable_; }
  int exit_code() const { return ExitCodeOf(code_); }

  // Returns a copy with `context` put in front of the message: "context: message".
  Status WithContext(std::string_view context) const;
  // Returns a copy with the hint replaced.
  Status WithHint(std::string hint) const;

  // "message" or "message\nhint: ..." for people.
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::string hint_;
  bool retryable_ = false;
};

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace pgbaton

// Returns from the enclosing function if `expr` (a Status) is not ok.
#define PGB_RETURN_IF_ERROR(expr)      \
  do {                                 \
    ::pgbaton::Status pgb_s_ = (expr); \
    if (!pgb_s_.ok()) return pgb_s_;   \
  } while (0)

#define PGB_CONCAT_INNER(a, b) a##b
#define PGB_CONCAT(a, b) PGB_CONCAT_INNER(a, b)
// `PGB_ASSIGN_OR_RETURN(auto x, F());` declares x from a Result or returns its Status.
#define PGB_ASSIGN_OR_RETURN(decl, expr)                                                \
  auto PGB_CONCAT(pgb_r_, __LINE__) = (expr);                                           \
  if (!PGB_CONCAT(pgb_r_, __LINE__).ok()) return PGB_CONCAT(pgb_r_, __LINE__).status(); \
  decl = std::move(PGB_CONCAT(pgb_r_, __LINE__)).value()
