// Lsn parsing and printing: round trips, PostgreSQL's spelling, and errors that name the text.
#include "common/types.h"

#include <gtest/gtest.h>

namespace pgbaton {
namespace {

TEST(LsnTest, ParsesAndPrintsLikePostgres) {
  auto lsn = Lsn::Parse("16/B374D848");
  ASSERT_TRUE(lsn.ok()) << lsn.status().ToString();
  EXPECT_EQ(lsn->value(), (uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(lsn->ToString(), "16/B374D848");
}

TEST(LsnTest, LowerCaseHexIsAcceptedAndPrintedUpper) {
  auto lsn = Lsn::Parse("a/ff");
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(lsn->ToString(), "A/FF");
}

TEST(LsnTest, RoundTripsBoundaryValues) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000},
                     uint64_t{0x123456789ABCDEF0}, ~uint64_t{0}}) {
    Lsn lsn(v);
    auto back = Lsn::Parse(lsn.ToString());
    ASSERT_TRUE(back.ok()) << lsn.ToString();
    EXPECT_EQ(back->value(), v) << lsn.ToString();
  }
  EXPECT_EQ(Lsn(0).ToString(), "0/0");
  EXPECT_EQ(Lsn::Max().ToString(), "FFFFFFFF/FFFFFFFF");
}

TEST(LsnTest, RejectsMalformedTextNamingIt) {
  for (const char* bad : {"", "/", "16", "16/", "/B374D848", "16/B374D84G", "123456789/0",
                          "0/123456789", "16 /B3", "-1/0", "16/B3/4", "0x16/B3"}) {
    auto lsn = Lsn::Parse(bad);
    ASSERT_FALSE(lsn.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(lsn.status().code(), ErrorCode::kUsage);
    EXPECT_NE(lsn.status().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << lsn.status().message();
    EXPECT_FALSE(lsn.status().hint().empty());
  }
}

TEST(LsnTest, OrdersAndMeasuresDistance) {
  Lsn a(100), b(250);
  EXPECT_LT(a, b);
  EXPECT_EQ(b.BytesSince(a), 150u);
  EXPECT_EQ(a.BytesSince(b), 0u);
  EXPECT_FALSE(Lsn::Invalid().IsValid());
  EXPECT_TRUE(a.IsValid());
}

TEST(PgTimestampTest, ConvertsEpochs) {
  auto t = PgTimestamp::FromUnixMicros(946684800LL * 1000000LL);
  EXPECT_EQ(t.micros, 0);
  EXPECT_EQ(t.ToString(), "2000-01-01T00:00:00.000000Z");
  EXPECT_EQ(PgTimestamp{-1}.ToString(), "1999-12-31T23:59:59.999999Z");
}

}  // namespace
}  // namespace pgbaton
