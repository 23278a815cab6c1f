// A synthetic change stream shaped like pgbench's TPC-B-like transaction, as pgoutput would send it
// in text format: UPDATE pgbench_accounts, UPDATE pgbench_tellers, UPDATE pgbench_branches,
// INSERT INTO pgbench_history. Values are random within pgbench's ranges (scale 100); the
// blank-padded char(84) filler of accounts is what makes the stream compress well, as in reality.
#pragma once

#include <fmt/format.h>

#include <random>
#include <string>

#include "queue/work_queue.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue::bench {

inline Value T(std::string s) { return Value{ValueKind::kText, std::move(s)}; }
inline Value Null() { return Value{ValueKind::kNull, ""}; }

class PgbenchStream {
 public:
  explicit PgbenchStream(uint64_t seed = 1) : rng_(seed) {}

  // One transaction's changes as one chunk.
  ChangeChunk NextChunk(uint32_t xid) {
    int64_t aid = Uniform(1, 10'000'000), tid = Uniform(1, 1000), bid = Uniform(1, 100);
    int64_t delta = Uniform(-5000, 5000);
    ChangeChunk c;
    c.xid = c.subxid = Xid{xid};
    c.changes.push_back(
        Update(16390, {T(std::to_string(aid)), T(std::to_string((aid - 1) / 100000 + 1)),
                       T(std::to_string(Uniform(-100000, 100000))), T(std::string(84, ' '))}));
    c.changes.push_back(Update(16387, {T(std::to_string(tid)), T(std::to_string(bid)),
                                       T(std::to_string(Uniform(-1e6, 1e6))), Null()}));
    c.changes.push_back(
        Update(16384, {T(std::to_string(bid)), T(std::to_string(Uniform(-1e7, 1e7))), Null()}));
    Change ins;
    ins.kind = ChangeKind::kInsert;
    ins.relation = RelationId{16393};
    ins.relation_version = 1;
    ins.new_tuple = Tuple{T(std::to_string(tid)),
                          T(std::to_string(bid)),
                          T(std::to_string(aid)),
                          T(std::to_string(delta)),
                          T(fmt::format("2026-11-23 19:{:02}:{:02}.{:06}", Uniform(0, 59),
                                        Uniform(0, 59), Uniform(0, 999999))),
                          Null()};
    c.changes.push_back(std::move(ins));
    return c;
  }

  CommitRecord Commit(uint32_t xid, uint64_t lsn) {
    CommitRecord r = testing::MakeCommit(xid, lsn, 0x30);
    r.commit_time = PgTimestamp{static_cast<int64_t>(lsn)};
    r.change_count = 4;
    r.chunk_count = 1;
    return r;
  }

 private:
  int64_t Uniform(double lo, double hi) {
    return std::uniform_int_distribution<int64_t>(static_cast<int64_t>(lo),
                                                  static_cast<int64_t>(hi))(rng_);
  }
  static Change Update(uint32_t rel, Tuple t) {
    Change c;
    c.kind = ChangeKind::kUpdate;
    c.relation = RelationId{rel};
    c.relation_version = 1;
    c.new_tuple = std::move(t);
    return c;
  }
  std::mt19937_64 rng_;
};

// The bytes of the values in a chunk: what the source sent, before our framing.
inline size_t PayloadBytes(const ChangeChunk& c) {
  size_t n = 0;
  for (const Change& ch : c.changes) {
    for (const auto* t : {&ch.old_tuple, &ch.new_tuple}) {
      if (*t) {
        for (const Value& v : **t) n += v.data.size();
      }
    }
  }
  return n;
}

}  // namespace pgbaton::queue::bench
