// Row keys: a row's identity in one relation, as the values of some of its columns (the replica
// identity key, or a unique index) read from a tuple. One representation serves the scheduler's
// write sets (Hash), the apply session's merged updates (equality) and the order in which it
// sends them (OrdersBefore). Values only: no I/O, thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "applier/target_relation.h"
#include "queue/record.h"

namespace pgbaton::applier {

// The bytes a key is hashed and compared by: a tag, then strings each prefixed with its length,
// so that ("ab", "c") and ("a", "bc") differ.
class KeyBytes {
 public:
  explicit KeyBytes(char tag) { bytes_.push_back(tag); }
  void Add(std::string_view s);
  void AddNull() { bytes_.push_back('\xff'); }
  // XXH3, 64 bits.
  uint64_t Hash() const;
  const std::string& bytes() const { return bytes_; }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

class RowKey {
 public:
  // The key of columns `cols` (source column indexes of `rel`) in `tuple`; nullopt when one of
  // the values is unknown (unchanged TOAST) or the tuple lacks a column. `rel` must outlive the
  // key; `tuple` need not.
  static std::optional<RowKey> Of(const TargetRelation& rel, const std::vector<int>& cols,
                                  const queue::Tuple& tuple);

  // A hash of the relation's name, the columns' names and the values: the same for one target
  // row under every descriptor version of its relation, which is what write sets need.
  uint64_t Hash() const { return hash_; }
  // The same descriptor version (the same TargetRelation), columns and values: what merged
  // updates are merged by.
  bool operator==(const RowKey& o) const { return rel_ == o.rel_ && bytes_ == o.bytes_; }
  // Where the row goes in the target's key order: by descriptor, then by the first column, by
  // value for integer types and bytewise otherwise. Enough to keep nearby keys together; keys it
  // does not order either way may go in any order.
  bool OrdersBefore(const RowKey& o) const;

  struct Hasher {
    size_t operator()(const RowKey& k) const { return static_cast<size_t>(k.hash_); }
  };

 private:
  RowKey() = default;
  std::string_view first() const { return std::string_view(bytes_).substr(first_at_, first_size_); }

  const TargetRelation* rel_ = nullptr;
  std::string bytes_;  // KeyBytes('K'): the relation's name, then each column's name and value
  uint64_t hash_ = 0;
  size_t first_at_ = 0, first_size_ = 0;  // the first value, within bytes_
  bool numeric_ = false;                  // the first value as an integer: number_
  int64_t number_ = 0;
};

}  // namespace pgbaton::applier
