// The key layout of the RocksDB backend: one column family whose keys start with a one-byte
// prefix naming what they hold; numbers in keys are big-endian so that keys sort as numbers.
// docs/reference/queue-format.md is the spec. Internal to queue/ (the rocksdb_queue_*.cc files).
#pragma once

#include <rocksdb/slice.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/types.h"
#include "queue/codec.h"

namespace pgbaton::queue::rocksdb_keys {

constexpr char kSysPrefix = 's';     // s<name>: format_version, migration_name, next_txn_ref
constexpr char kMetaPrefix = 'm';    // m<key>: user metadata
constexpr char kRelPrefix = 'r';     // r<id BE32><version BE32>
constexpr char kCommitPrefix = 'c';  // c<commit lsn BE64>
constexpr char kInlinePrefix =
    'k';                           // k<commit lsn BE64><seq BE32>: chunks written with their commit
constexpr char kOpenPrefix = 'o';  // o<txn_ref BE64> -> xid BE32: a transaction without commit
constexpr char kPendingPrefix = 'p';  // p<txn_ref BE64><seq BE32>: chunks of a txn over appends

// The writer's lock file in the queue directory: an flock, and the writer's pid as text.
inline constexpr char kLockFile[] = "pgbaton.lock";

inline std::string CommitKey(Lsn lsn) {
  std::string k(1, kCommitPrefix);
  PutBigEndian64(&k, lsn.value());
  return k;
}
inline std::string InlineKey(Lsn lsn, uint32_t seq) {
  std::string k(1, kInlinePrefix);
  PutBigEndian64(&k, lsn.value());
  PutBigEndian32(&k, seq);
  return k;
}
// o<ref> or p<ref>: a transaction's open marker, or the first key of its pending chunks.
inline std::string RefKey(char prefix, uint64_t ref) {
  std::string k(1, prefix);
  PutBigEndian64(&k, ref);
  return k;
}
inline std::string PendingKey(uint64_t ref, uint32_t seq) {
  std::string k = RefKey(kPendingPrefix, ref);
  PutBigEndian32(&k, seq);
  return k;
}
inline std::string RelKey(RelationId id, uint32_t version) {
  std::string k(1, kRelPrefix);
  PutBigEndian32(&k, id.value);
  PutBigEndian32(&k, version);
  return k;
}
inline std::string SysKey(std::string_view name) {
  return std::string(1, kSysPrefix) + std::string(name);
}
inline std::string MetaKey(std::string_view key) {
  return std::string(1, kMetaPrefix) + std::string(key);
}

// The first key after every key that starts with `prefix`.
inline std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\xff');
}
inline bool StartsWith(const rocksdb::Slice& s, std::string_view p) {
  return s.size() >= p.size() && std::memcmp(s.data(), p.data(), p.size()) == 0;
}
inline std::string_view View(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace pgbaton::queue::rocksdb_keys
