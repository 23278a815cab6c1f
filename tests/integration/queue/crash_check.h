// Checks for the queue crash tests: what the killed writer reported durable against what the
// queue holds. Header-only, included by the RocksDB and the Kafka crash tests.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/queue/crash_workload.h"
#include "tests/support/kafka_broker.h"
#include "tests/support/process.h"

namespace pgbaton::queue::crash {

using namespace std::chrono_literals;
using pgbaton::testing::ChildProcess;
using pgbaton::testing::KafkaBroker;
using pgbaton::testing::MakeTempDir;
using pgbaton::testing::ProcessOptions;
using pgbaton::testing::ReadFile;
using pgbaton::testing::RemoveTree;

inline ProcessOptions OutputTo(const std::string& path) {
  ProcessOptions p;
  p.stdout_path = path;
  return p;
}

inline std::set<uint64_t> Reported(const std::string& path) {
  std::set<uint64_t> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    auto lsn = Lsn::Parse(line);
    if (lsn.ok()) out.insert(IndexOf(*lsn));
  }
  return out;
}

// Waits until the report holds `n` more lines than `from` (or the child died).
inline void WaitForProgress(ChildProcess* child, const std::string& report, size_t n) {
  size_t start = Reported(report).size();
  for (int i = 0; i < 1200 && Reported(report).size() < start + n; ++i) {
    ASSERT_TRUE(child->running()) << "the writer exited early";
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(Reported(report).size(), start + n) << "the writer made no progress";
}

// Reads the whole queue and checks every transaction against the workload. Returns the indexes.
inline std::set<uint64_t> CheckQueue(const QueueOptions& options) {
  std::set<uint64_t> seen;
  auto q = WorkQueue::Open(options);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return seen;
  auto cursor = std::move((*q)->ReadFrom(Lsn::Invalid())).value();
  uint64_t prev = 0;
  while (true) {
    auto t = cursor->Next(0ms);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok() || !*t) break;
    uint64_t k = IndexOf((*t)->commit().commit_lsn);
    EXPECT_GT(k, prev) << "out of order or duplicated";
    prev = k;
    EXPECT_EQ((*t)->commit(), CommitOf(k));
    ChangeChunk c;
    uint32_t n = 0;
    while (true) {
      auto more = (*t)->NextChunk(&c);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      EXPECT_EQ(c, ChunkOf(k, n)) << "transaction " << k << " chunk " << n;
      ++n;
    }
    EXPECT_EQ(n, ChunksOf(k)) << "transaction " << k << " is torn";
    seen.insert(k);
  }
  return seen;
}

inline void ExpectAllReportedPresent(const std::set<uint64_t>& reported,
                                     const std::set<uint64_t>& seen) {
  for (uint64_t k : reported)
    EXPECT_TRUE(seen.count(k)) << "durable transaction " << k << " is missing";
  // No gaps: the queue holds a prefix of the workload (a resumed writer continues after it).
  if (!seen.empty()) {
    EXPECT_EQ(*seen.begin(), 1u);
    EXPECT_EQ(*seen.rbegin(), seen.size());
  }
}

}  // namespace pgbaton::queue::crash
