// Durable-append benchmarks: WorkQueue::Append of 1, 10 and 100 pgbench-like transactions per
// call (as a decoder batches what arrived meanwhile), each call durable on return, for RocksDB
// (synced WriteBatch) and Kafka (acks=all delivery reports, local one-node broker); next to the
// peer that bounds them: write + fdatasync of the same bytes to a file on the same device.
// Prints medians of 3 repetitions, then each backend's time per append as a ratio of the peer's.
// Run: PGBATON_BENCH_DIR=/path/on/the/device build/<dir>/bench/queue/queue_append_bench
//      (default TMPDIR or /tmp; the Kafka broker keeps its data under TMPDIR as well)
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "bench/queue/pgbench_stream.h"
#include "queue/codec.h"
#include "tests/support/kafka_broker.h"
#include "tests/support/process.h"

namespace pgbaton::queue::bench {
namespace {

std::string BenchDir() {
  const char* d = std::getenv("PGBATON_BENCH_DIR");
  if (d && *d) return d;
  d = std::getenv("TMPDIR");
  return d && *d ? d : "/tmp";
}

// Batches of `txns` transactions with increasing LSNs.
class Batches {
 public:
  RecordBatch Next(int txns) {
    RecordBatch b;
    for (int i = 0; i < txns; ++i, ++xid_) {
      b.chunks.push_back(stream_.NextChunk(xid_));
      b.commits.push_back(stream_.Commit(xid_, lsn_ += 0x100));
    }
    return b;
  }
  // The bytes a backend stores for `b`: its encoded records.
  static size_t EncodedBytes(const RecordBatch& b) {
    size_t n = 0;
    for (const auto& c : b.chunks) n += EncodeChunk(c).size();
    for (const auto& c : b.commits) n += EncodeCommit(StoredCommit{c, 0}).size();
    return n;
  }

 private:
  PgbenchStream stream_{7};
  uint32_t xid_ = 1000;
  uint64_t lsn_ = 0x1'0000'0000ull;
};

void Finish(benchmark::State& state, size_t bytes, int txns) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * txns);
  state.counters["txns_per_append"] = txns;
}

// The peer: write the same bytes as one append and fdatasync, like a WAL with group commit.
void BM_RawFdatasync(benchmark::State& state) {
  int txns = static_cast<int>(state.range(0));
  Batches batches;
  std::string path = BenchDir() + "/pgbaton-bench-raw.dat";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    state.SkipWithError("cannot create the file");
    return;
  }
  size_t bytes = 0, written = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string data;
    RecordBatch b = batches.Next(txns);
    for (const auto& c : b.chunks) data += EncodeChunk(c);
    for (const auto& c : b.commits) data += EncodeCommit(StoredCommit{c, 0});
    if (written > (64u << 20)) {
      if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        state.SkipWithError("truncate failed");
      written = 0;
    }
    state.ResumeTiming();
    if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()) ||
        fdatasync(fd) != 0) {
      state.SkipWithError("write failed");
      break;
    }
    bytes += data.size();
    written += data.size();
  }
  close(fd);
  unlink(path.c_str());
  Finish(state, bytes, txns);
}

void RunAppends(benchmark::State& state, WorkQueue* q) {
  int txns = static_cast<int>(state.range(0));
  Batches batches;
  // One untimed append first: connections and metadata are set up once per queue, not per append.
  Status warm = q->Append(batches.Next(txns));
  if (!warm.ok()) {
    state.SkipWithError(warm.message().c_str());
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    RecordBatch b = batches.Next(txns);
    bytes += Batches::EncodedBytes(b);
    state.ResumeTiming();
    Status s = q->Append(b);
    if (!s.ok()) {
      state.SkipWithError(s.message().c_str());
      break;
    }
  }
  Finish(state, bytes, txns);
}

void BM_RocksDbAppend(benchmark::State& state) {
  std::string dir = BenchDir() + "/pgbaton-bench-rocksdb";
  std::filesystem::remove_all(dir);
  QueueOptions o;
  o.dir = dir;
  auto q = WorkQueue::Open(o);
  if (!q.ok()) {
    state.SkipWithError(q.status().message().c_str());
    return;
  }
  RunAppends(state, q->get());
  q->reset();
  std::filesystem::remove_all(dir);
}

pgbaton::testing::KafkaBroker* Broker(std::string* error) {
  static std::unique_ptr<pgbaton::testing::KafkaBroker> broker;
  static std::string start_error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto b = pgbaton::testing::KafkaBroker::Start();
    if (b.ok()) {
      broker = std::move(b).value();
    } else {
      start_error = b.status().ToString();
    }
  }
  *error = start_error;
  return broker.get();
}

void BM_KafkaAppend(benchmark::State& state) {
  std::string error;
  auto* broker = Broker(&error);
  if (!broker) {
    state.SkipWithError(("no kafka broker: " + error).c_str());
    return;
  }
  static int topic_n = 0;
  QueueOptions o;
  o.kafka_brokers = broker->Brokers();
  o.kafka_topic = "bench" + std::to_string(++topic_n);
  auto q = WorkQueue::Open(o);
  if (!q.ok()) {
    state.SkipWithError(q.status().message().c_str());
    return;
  }
  RunAppends(state, q->get());
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgName("txns")->Arg(1)->Arg(10)->Arg(100);
  b->UseRealTime()->MinTime(1.0)->Repetitions(3)->ReportAggregatesOnly(true)->DisplayAggregatesOnly(
      true);
}

BENCHMARK(BM_RawFdatasync)->Apply(Args);
BENCHMARK(BM_RocksDbAppend)->Apply(Args);
BENCHMARK(BM_KafkaAppend)->Apply(Args);

// Prints as usual and keeps each median's time per iteration for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.aggregate_name != "median" || r.error_occurred) continue;
      medians_[r.run_name.function_name][r.run_name.args] = r.GetAdjustedRealTime();
    }
  }
  void PrintRatios() const {
    auto peer = medians_.find("BM_RawFdatasync");
    if (peer == medians_.end()) return;
    std::printf(
        "\ntime per durable append as a multiple of write+fdatasync of the same bytes (median):\n");
    for (const char* backend : {"BM_RocksDbAppend", "BM_KafkaAppend"}) {
      auto it = medians_.find(backend);
      if (it == medians_.end()) continue;
      for (const auto& [args, t] : it->second) {
        auto p = peer->second.find(args);
        if (p != peer->second.end())
          std::printf("  %-18s %-10s %6.2fx\n", backend, args.c_str(), t / p->second);
      }
    }
  }

 private:
  std::map<std::string, std::map<std::string, double>> medians_;
};

}  // namespace
}  // namespace pgbaton::queue::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  pgbaton::queue::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
