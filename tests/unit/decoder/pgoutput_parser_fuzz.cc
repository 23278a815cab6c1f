// libFuzzer target for the pgoutput parser and the assembler behind it. Input: either one raw
// message, or a capture file (tests/support/capture_file.h) whose messages go through one parser
// and one assembler in order, so the golden captures are the seed corpus:
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -G Ninja -DPGBATON_FUZZ=ON
//   cmake --build build/fuzz --target pgoutput_parser_fuzz
//   mkdir -p seeds corpus; for f in tests/data/pgoutput/*/*.bin; do cp $f seeds/${f//\//_}; done
//   build/fuzz/tests/unit/decoder/pgoutput_parser_fuzz -max_total_time=120 -max_len=400000 corpus
//   seeds
// (and -max_len=4096 on an empty corpus for single messages).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "decoder/assembler.h"
#include "decoder/pgoutput_parser.h"
#include "tests/support/capture_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgbaton;
  using namespace pgbaton::decoder;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static StaticTypeResolver types(
      {{23, QualifiedName{"pg_catalog", "int4"}}, {25, QualifiedName{"pg_catalog", "text"}}});
  PgOutputParser parser;
  if (in.substr(0, kCaptureMagic.size()) != kCaptureMagic) {
    (void)parser.Parse(in);
    return 0;
  }
  auto msgs = ParseCapture(in);
  if (!msgs.ok()) return 0;
  Assembler assembler(&types, {.chunk_bytes = 4096, .skip_through = Lsn()});
  for (const auto& m : *msgs) {
    auto r = parser.Parse(m.payload);
    if (!r.ok()) continue;
    (void)assembler.Add(std::move(*r), m.wal_start);
    if (assembler.batch_bytes() > (1 << 16)) (void)assembler.TakeBatch();
  }
  return 0;
}
