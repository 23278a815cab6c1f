// Codec micro-benchmarks: encode and decode speed of change chunks (MB/s of the uncompressed
// encoding) and the zstd compression ratio, on a synthetic pgbench-like stream
// (pgbench_stream.h). Args: transactions per chunk, zstd level (0: compression off).
// Run: build/<dir>/bench/queue/queue_codec_bench  (prints medians of 5 repetitions)
#include <benchmark/benchmark.h>

#include "bench/queue/pgbench_stream.h"
#include "queue/codec.h"

namespace pgbaton::queue::bench {
namespace {

ChangeChunk MakeChunk(int txns) {
  PgbenchStream s(42);
  ChangeChunk chunk;
  chunk.xid = chunk.subxid = Xid{1};
  for (int i = 0; i < txns; ++i) {
    ChangeChunk one = s.NextChunk(1);
    for (auto& c : one.changes) chunk.changes.push_back(std::move(c));
  }
  return chunk;
}

EncodeOptions OptionsFor(int level) {
  EncodeOptions o;
  if (level == 0) {
    o.compress_min_bytes = SIZE_MAX;
  } else {
    o.zstd_level = level;
  }
  return o;
}

void SetCounters(benchmark::State& state, const ChangeChunk& chunk, const std::string& encoded) {
  size_t plain = EncodeChunk(chunk, OptionsFor(0)).size();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * plain));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * chunk.changes.size()));
  state.counters["ratio"] = static_cast<double>(plain) / static_cast<double>(encoded.size());
  state.counters["payload_ratio"] =
      static_cast<double>(PayloadBytes(chunk)) / static_cast<double>(encoded.size());
  state.counters["bytes_per_change"] =
      static_cast<double>(encoded.size()) / static_cast<double>(chunk.changes.size());
}

void BM_EncodeChunk(benchmark::State& state) {
  ChangeChunk chunk = MakeChunk(static_cast<int>(state.range(0)));
  EncodeOptions o = OptionsFor(static_cast<int>(state.range(1)));
  std::string out;
  for (auto _ : state) {
    out = EncodeChunk(chunk, o);
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, chunk, out);
}

void BM_DecodeChunk(benchmark::State& state) {
  ChangeChunk chunk = MakeChunk(static_cast<int>(state.range(0)));
  std::string bytes = EncodeChunk(chunk, OptionsFor(static_cast<int>(state.range(1))));
  ChangeChunk out;
  for (auto _ : state) {
    Status s = DecodeChunk(bytes, "bench", &out);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(out.changes.data());
  }
  SetCounters(state, chunk, bytes);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"txns", "zstd"});
  for (int txns : {1, 100, 1000}) {
    for (int level : {0, 1, 3}) b->Args({txns, level});
  }
  b->Repetitions(5)->ReportAggregatesOnly(true)->DisplayAggregatesOnly(true);
}

BENCHMARK(BM_EncodeChunk)->Apply(Args);
BENCHMARK(BM_DecodeChunk)->Apply(Args);

}  // namespace
}  // namespace pgbaton::queue::bench

BENCHMARK_MAIN();
