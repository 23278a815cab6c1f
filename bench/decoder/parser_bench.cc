// Parser and assembler throughput on the golden captures (tests/data/pgoutput/<major>/
// stream.bin): MB/s of pgoutput payload. Run: build/bench/decoder/decoder_parser_bench
#include <benchmark/benchmark.h>

#include <string>

#include "decoder/assembler.h"
#include "decoder/pgoutput_parser.h"
#include "tests/support/capture_file.h"

namespace pgbaton::decoder {
namespace {

std::vector<CapturedMessage> Load(int major) {
  auto m = ReadCaptureFile(std::string(PGBATON_TEST_DATA_DIR) + "/pgoutput/" +
                           std::to_string(major) + "/stream.bin");
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
    std::abort();
  }
  return std::move(*m);
}

size_t Bytes(const std::vector<CapturedMessage>& msgs) {
  size_t n = 0;
  for (const auto& m : msgs) n += m.payload.size();
  return n;
}

void BM_Parse(benchmark::State& state) {
  auto msgs = Load(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    PgOutputParser p;
    for (const auto& m : msgs) {
      if (m.payload.empty()) continue;
      auto r = p.Parse(m.payload);
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Bytes(msgs)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * msgs.size()));
}
BENCHMARK(BM_Parse)->Arg(13)->Arg(15)->Arg(17)->Arg(18)->Unit(benchmark::kMillisecond);

// Parser + assembler (chunks, relation versions), without the queue.
void BM_ParseAndAssemble(benchmark::State& state) {
  auto msgs = Load(static_cast<int>(state.range(0)));
  std::unordered_map<uint32_t, QualifiedName> names;
  for (uint32_t oid : {16u, 17u, 20u, 23u, 25u, 701u, 869u, 1007u, 1009u, 1082u, 1114u, 1184u,
                       1186u, 1700u, 2950u, 3802u}) {
    names[oid] = QualifiedName{"pg_catalog", "t" + std::to_string(oid)};
  }
  StaticTypeResolver types(names);
  for (auto _ : state) {
    PgOutputParser p;
    Assembler a(&types, {});
    for (const auto& m : msgs) {
      if (m.payload.empty()) continue;
      auto r = p.Parse(m.payload);
      if (!r.ok() || !a.Add(std::move(*r), m.wal_start).ok()) state.SkipWithError("parse failed");
      if (a.batch_bytes() > (8 << 20)) benchmark::DoNotOptimize(a.TakeBatch());
    }
    benchmark::DoNotOptimize(a.TakeBatch());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Bytes(msgs)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * msgs.size()));
}
BENCHMARK(BM_ParseAndAssemble)->Arg(13)->Arg(15)->Arg(17)->Arg(18)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pgbaton::decoder

BENCHMARK_MAIN();
