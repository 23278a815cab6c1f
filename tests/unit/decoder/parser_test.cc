// The parser on hand-built messages: what the golden captures cannot show (binary values,
// protocol-4 stream abort fields, stream-block XIDs) and the exact error texts.
#include <gtest/gtest.h>

#include "decoder/pgoutput_parser.h"
#include "decoder/replication.h"

namespace pgbaton::decoder {
namespace {

// A little builder for big-endian protocol bytes.
struct B {
  std::string s;
  B& u8(uint8_t v) {
    s.push_back(static_cast<char>(v));
    return *this;
  }
  B& u16(uint16_t v) { return u8(v >> 8).u8(v & 0xff); }
  B& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  B& u64(uint64_t v) { return u32(v >> 32).u32(v & 0xffffffff); }
  B& str(std::string_view v) {
    s.append(v);
    s.push_back('\0');
    return *this;
  }
  B& raw(std::string_view v) {
    s.append(v);
    return *this;
  }
};

TEST(ParserTest, InsertWithEveryColumnMarker) {
  B b;
  b.u8('I').u32(16400).u8('N').u16(4);
  b.u8('n').u8('u').u8('t').u32(3).raw("abc").u8('b').u32(2).raw(std::string("\x00\x01", 2));
  PgOutputParser p;
  auto r = p.Parse(b.s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& m = std::get<InsertMsg>(*r);
  EXPECT_FALSE(m.xid.has_value());
  EXPECT_EQ(m.relation, RelationId{16400});
  ASSERT_EQ(m.new_tuple.size(), 4u);
  EXPECT_EQ(m.new_tuple[0].kind, queue::ValueKind::kNull);
  EXPECT_EQ(m.new_tuple[1].kind, queue::ValueKind::kUnchangedToast);
  EXPECT_EQ(m.new_tuple[2], (queue::Value{queue::ValueKind::kText, "abc"}));
  EXPECT_EQ(m.new_tuple[3], (queue::Value{queue::ValueKind::kBinary, std::string("\x00\x01", 2)}));
}

TEST(ParserTest, StreamBlockCarriesXids) {
  PgOutputParser p;
  ASSERT_TRUE(p.Parse(B().u8('S').u32(700).u8(1).s).ok());
  EXPECT_TRUE(p.in_stream());
  auto r = p.Parse(B().u8('I').u32(701).u32(16400).u8('N').u16(1).u8('n').s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::get<InsertMsg>(*r).xid, Xid{701});
  auto t = p.Parse(B().u8('T').u32(701).u32(2).u8(3).u32(1).u32(2).s);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(std::get<TruncateMsg>(*t).flags, 3);
  EXPECT_EQ(std::get<TruncateMsg>(*t).relations.size(), 2u);
  ASSERT_TRUE(p.Parse(B().u8('E').s).ok());
  EXPECT_FALSE(p.in_stream());
  // Outside the block the same bytes are one int32 too long.
  auto bad = p.Parse(B().u8('I').u32(701).u32(16400).u8('N').u16(1).u8('n').s);
  EXPECT_EQ(bad.status().code(), ErrorCode::kProtocol);
}

TEST(ParserTest, StreamAbortWithAndWithoutParallelFields) {
  PgOutputParser p;
  auto a = p.Parse(B().u8('A').u32(5).u32(6).s);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(std::get<StreamAbortMsg>(*a).subxid, Xid{6});
  EXPECT_FALSE(std::get<StreamAbortMsg>(*a).abort_lsn.has_value());
  auto b = p.Parse(B().u8('A').u32(5).u32(5).u64(0x1234).u64(99).s);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::get<StreamAbortMsg>(*b).abort_lsn, Lsn(0x1234));
  EXPECT_EQ(std::get<StreamAbortMsg>(*b).abort_time->micros, 99);
}

TEST(ParserTest, ErrorsNameTheMessageAndOffset) {
  PgOutputParser p;
  auto r = p.Parse(B().u8('I').u32(1).u8('N').u16(1).u8('t').u32(10).raw("abc").s);
  EXPECT_EQ(r.status().code(), ErrorCode::kProtocol);
  EXPECT_EQ(r.status().message(),
            "pgoutput: value length 10 of column 1 exceeds the message in insert message at "
            "offset 13 (of 16 bytes)");
  auto u = p.Parse("Z");
  EXPECT_EQ(u.status().message(), "pgoutput: unknown message type 0x5a at offset 0 (of 1 bytes)");
  auto c = p.Parse(B().u8('C').u8(0).u64(1).s);
  EXPECT_EQ(c.status().message(),
            "pgoutput: truncated int64 in commit message at offset 10 (of 10 bytes)");
  auto s = p.Parse(B().u8('O').u64(1).raw("no-nul").s);
  EXPECT_EQ(s.status().message(),
            "pgoutput: unterminated string in origin message at offset 9 (of 15 bytes)");
  auto tr = p.Parse(B().u8('B').u64(1).u64(2).u32(3).u8(0).s);
  EXPECT_EQ(tr.status().message(),
            "pgoutput: 1 unexpected trailing bytes in begin message at offset 21 (of 22 bytes)");
  // A huge column count is refused before anything is allocated for it.
  auto huge = p.Parse(B().u8('I').u32(1).u8('N').u16(65535).u8('n').s);
  EXPECT_NE(huge.status().message().find("column count 65535 exceeds the message"),
            std::string::npos);
  // A failed parse leaves the stream state alone.
  EXPECT_FALSE(p.Parse(B().u8('S').u32(1).s).ok());
  EXPECT_FALSE(p.in_stream());
}

TEST(ParserTest, TwoPhaseMessages) {
  PgOutputParser p;
  auto r = p.Parse(B().u8('r').u8(0).u64(10).u64(20).u64(30).u64(40).u32(7).str("gid-7").s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& m = std::get<RollbackPreparedMsg>(*r);
  EXPECT_EQ(m.prepare_end_lsn, Lsn(10));
  EXPECT_EQ(m.rollback_end_lsn, Lsn(20));
  EXPECT_EQ(m.rollback_time.micros, 40);
  EXPECT_EQ(m.xid, Xid{7});
  EXPECT_EQ(m.gid, "gid-7");
  auto sp = p.Parse(B().u8('p').u8(0).u64(1).u64(2).u64(3).u32(4).str("g").s);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(MessageName(*sp), "stream prepare");
}

TEST(ReplicationFramingTest, XLogDataKeepaliveAndStatus) {
  B w;
  w.u8('w').u64(0x100).u64(0x200).u64(5).raw("payload");
  auto x = ParseXLogData(w.s);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->wal_start, Lsn(0x100));
  EXPECT_EQ(x->wal_end, Lsn(0x200));
  EXPECT_EQ(x->payload, "payload");
  EXPECT_EQ(ParseXLogData("w123").status().code(), ErrorCode::kProtocol);
  auto k = ParseKeepalive(B().u8('k').u64(0x300).u64(6).u8(1).s);
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k->reply_requested);
  EXPECT_EQ(k->wal_end, Lsn(0x300));
  std::string st = EncodeStandbyStatus(Lsn(1), Lsn(2), Lsn(3), PgTimestamp{4}, true);
  EXPECT_EQ(st, B().u8('r').u64(1).u64(2).u64(3).u64(4).u8(1).s);
}

TEST(ReplicationOptionsTest, PerMajor) {
  EXPECT_EQ(FormatPgOutputOptions(DefaultPgOutputOptions(13, "pgbaton")),
            "(proto_version '1', publication_names '\"pgbaton\"')");
  EXPECT_EQ(FormatPgOutputOptions(DefaultPgOutputOptions(14, "p")),
            "(proto_version '2', publication_names '\"p\"', messages 'true', streaming 'on')");
  EXPECT_EQ(FormatPgOutputOptions(DefaultPgOutputOptions(15, "p")),
            "(proto_version '3', publication_names '\"p\"', messages 'true', streaming 'on')");
  EXPECT_EQ(FormatPgOutputOptions(DefaultPgOutputOptions(18, "it's")),
            "(proto_version '4', publication_names '\"it''s\"', messages 'true', streaming 'on', "
            "origin 'none')");
}

}  // namespace
}  // namespace pgbaton::decoder
