// Every golden message truncated at every length and with bits flipped, through the parser and
// the assembler: an error or a message, never a crash or an over-read (run under ASan in CI's
// asan preset). Deterministic: the flips come from a fixed-seed generator.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "decoder/pgoutput_parser.h"
#include "tests/unit/decoder/golden_util.h"

namespace pgbaton::decoder::testing {
namespace {

TEST(ParserMutationTest, TruncationsAndBitFlips) {
  std::mt19937 rng(20261123);
  size_t errors = 0, parsed = 0;
  auto types = GoldenTypes();
  for (int major : {13, 15, 17, 18}) {
    for (const char* file : {"stream.bin", "twophase.bin"}) {
      if (major == 13 && std::string(file) == "twophase.bin") continue;
      auto msgs = ReadCaptureFile(CapturePath(major, file));
      ASSERT_TRUE(msgs.ok()) << msgs.status().ToString();
      Assembler a(&types, {.chunk_bytes = 1 << 16, .skip_through = Lsn()});
      PgOutputParser p;
      size_t n = 0;
      std::set<std::pair<char, size_t>> seen;
      for (const auto& m : *msgs) {
        if (m.payload.empty()) continue;
        // The first message of each (type, size): every truncation (a sample for long ones);
        // the thousands of look-alike rows of the big transactions: two random ones.
        bool first_of_kind = seen.insert({m.payload[0], m.payload.size()}).second;
        std::vector<size_t> lengths;
        if (first_of_kind) {
          size_t step = m.payload.size() > 512 ? m.payload.size() / 97 + 1 : 1;
          for (size_t len = 0; len < m.payload.size(); len += step) lengths.push_back(len);
        } else {
          lengths = {rng() % m.payload.size(), rng() % m.payload.size()};
        }
        for (size_t len : lengths) {
          PgOutputParser fresh = p;
          auto r = fresh.Parse(std::string_view(m.payload).substr(0, len));
          if (r.ok()) {
            ++parsed;  // a shorter valid message (rare) is fine
          } else {
            ++errors;
            EXPECT_EQ(r.status().code(), ErrorCode::kProtocol);
            EXPECT_NE(r.status().message().find("offset"), std::string::npos);
          }
        }
        for (int k = 0; k < (first_of_kind ? 16 : 1); ++k) {
          std::string bad = m.payload;
          size_t at = rng() % bad.size();
          bad[at] = static_cast<char>(bad[at] ^ (1u << (rng() % 8)));
          PgOutputParser fresh = p;
          auto r = fresh.Parse(bad);
          if (r.ok()) {
            // A flipped message that still parses goes to the assembler, which must either
            // take it or refuse it cleanly.
            Assembler scratch(&types, {.chunk_bytes = 1 << 16, .skip_through = Lsn()});
            (void)scratch.Add(std::move(*r), m.wal_start);
            ++parsed;
          } else {
            ++errors;
            EXPECT_EQ(r.status().code(), ErrorCode::kProtocol);
          }
        }
        auto r = p.Parse(m.payload);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        (void)a.Add(std::move(*r), m.wal_start);
        if (++n % 64 == 0) a.TakeBatch();
      }
    }
  }
  EXPECT_GT(errors, 5000u);
  EXPECT_GT(parsed, 0u);
}

}  // namespace
}  // namespace pgbaton::decoder::testing
