#include "queue/codec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "tests/support/queue_records.h"

namespace pgbaton::queue {
namespace {

using testing::MakeRelation;
using testing::Text;

// A change of `kind` to version `version` of relation `relation`.
Change RowChange(ChangeKind kind, uint32_t relation, uint32_t version) {
  Change c;
  c.kind = kind;
  c.relation = RelationId{relation};
  c.relation_version = version;
  return c;
}

ChangeChunk EveryKindChunk() {
  ChangeChunk chunk;
  chunk.xid = Xid{4711};
  chunk.subxid = Xid{4712};
  chunk.seq = 3;
  Change ins = RowChange(ChangeKind::kInsert, 16384, 2);
  ins.new_tuple = Tuple{Text("1"), Value{ValueKind::kNull, ""}, Text(""),
                        Value{ValueKind::kBinary, std::string("\0\1\2\xff", 4)}};
  Change upd = RowChange(ChangeKind::kUpdate, 16384, 2);
  upd.old_tuple = Tuple{Text("1")};
  upd.old_is_key_only = true;
  upd.new_tuple =
      Tuple{Text("2"), Value{ValueKind::kUnchangedToast, ""}, Value{ValueKind::kNull, ""}};
  Change upd_full = upd;
  upd_full.old_is_key_only = false;
  upd_full.old_tuple = Tuple{Text("1"), Text("old"), Value{ValueKind::kNull, ""}};
  Change upd_no_old = upd;
  upd_no_old.old_tuple.reset();
  upd_no_old.old_is_key_only = false;
  Change del = RowChange(ChangeKind::kDelete, 16385, 1);
  del.old_tuple = Tuple{Text("9")};
  del.old_is_key_only = true;
  Change trunc;
  trunc.kind = ChangeKind::kTruncate;
  trunc.truncated = {RelationId{16384}, RelationId{16385}};
  trunc.truncated_versions = {2, 1};
  trunc.truncate_flags = kTruncateCascade | kTruncateRestartIdentity;
  Change msg;
  msg.kind = ChangeKind::kMessage;
  msg.message_prefix = "pgbaton";
  msg.message_content = std::string("sentinel\0with nul", 17);
  Change empty_tuple;
  empty_tuple.kind = ChangeKind::kInsert;
  empty_tuple.relation = RelationId{1};
  empty_tuple.new_tuple = Tuple{};
  chunk.changes = {ins, upd, upd_full, upd_no_old, del, trunc, msg, empty_tuple};
  return chunk;
}

TEST(CodecTest, ChunkRoundTripEveryKindAndMarker) {
  ChangeChunk chunk = EveryKindChunk();
  std::string bytes = EncodeChunk(chunk);
  ChangeChunk out;
  ASSERT_TRUE(DecodeChunk(bytes, "chunk", &out).ok());
  EXPECT_EQ(out, chunk);
}

TEST(CodecTest, ChunkRoundTripUncompressedAndCompressed) {
  ChangeChunk chunk = EveryKindChunk();
  for (int i = 0; i < 200; ++i)
    chunk.changes.push_back(testing::MakeInsert(7, i, "same value repeated"));
  EncodeOptions plain;
  plain.compress_min_bytes = SIZE_MAX;
  std::string a = EncodeChunk(chunk, plain);
  std::string b = EncodeChunk(chunk);
  EXPECT_FALSE(PeekEnvelope(a, "a")->compressed);
  EXPECT_TRUE(PeekEnvelope(b, "b")->compressed);
  EXPECT_LT(b.size(), a.size() / 4);
  ChangeChunk out_a, out_b;
  ASSERT_TRUE(DecodeChunk(a, "a", &out_a).ok());
  ASSERT_TRUE(DecodeChunk(b, "b", &out_b).ok());
  EXPECT_EQ(out_a, chunk);
  EXPECT_EQ(out_b, chunk);
}

TEST(CodecTest, EmptyAndHugeValues) {
  ChangeChunk chunk;
  chunk.xid = chunk.subxid = Xid{1};
  EXPECT_EQ(
      [&] {
        ChangeChunk out;
        EXPECT_TRUE(DecodeChunk(EncodeChunk(chunk), "empty", &out).ok());
        return out;
      }(),
      chunk);
  std::mt19937_64 rng(42);
  std::string huge(16 << 20, '\0');
  for (char& c : huge) c = static_cast<char>(rng());
  Change c = testing::MakeInsert(1, 1, huge);
  c.new_tuple->push_back(Text(""));
  chunk.changes = {c};
  std::string bytes = EncodeChunk(chunk);
  EXPECT_GT(bytes.size(), huge.size());  // random bytes do not compress: stored plain
  ChangeChunk out;
  ASSERT_TRUE(DecodeChunk(bytes, "huge", &out).ok());
  EXPECT_EQ(out, chunk);
}

TEST(CodecTest, CommitRoundTrip) {
  StoredCommit s;
  s.commit.commit_lsn = *Lsn::Parse("16/B374D848");
  s.commit.end_lsn = *Lsn::Parse("16/B374D880");
  s.commit.xid = Xid{UINT32_MAX};
  s.commit.commit_time = PgTimestamp{-5};
  s.commit.origin = "origin_x";
  s.commit.origin_lsn = Lsn(77);
  s.commit.change_count = 1ull << 40;
  s.commit.chunk_count = 12;
  s.txn_ref = 99;
  StoredCommit out;
  ASSERT_TRUE(DecodeCommit(EncodeCommit(s), "commit", &out).ok());
  EXPECT_EQ(out.commit, s.commit);
  EXPECT_EQ(out.txn_ref, 99u);
}

TEST(CodecTest, RelationRoundTrip) {
  RelationDescriptor r = MakeRelation(16384, 3);
  r.identity = ReplicaIdentity::kFull;
  r.columns.push_back({"ts", {"pg_catalog", "timestamptz"}, 1184, -1, false});
  r.columns.push_back({"n", {"pg_catalog", "numeric"}, 1700, 655366, false});
  // Parts that a joined "schema.name" could not carry: dots, quotes, spaces, non-ASCII.
  r.columns.push_back({"home", {"Shop Data", "address"}, 16500, -1, false});
  r.columns.push_back({"x", {"a.b\"c", "t.y pe'ü"}, 16501, -1, false});
  RelationDescriptor out;
  ASSERT_TRUE(DecodeRelation(EncodeRelation(r), "rel", &out).ok());
  EXPECT_EQ(out, r);
}

TEST(CodecTest, MarkerRoundTrip) {
  RecordType type;
  Lsn lsn;
  ASSERT_TRUE(DecodeMarker(EncodeMarker(RecordType::kTrim, Lsn(123)), "m", &type, &lsn).ok());
  EXPECT_EQ(type, RecordType::kTrim);
  EXPECT_EQ(lsn, Lsn(123));
}

TEST(CodecTest, EveryFlippedByteIsDetected) {
  ChangeChunk chunk = EveryKindChunk();
  for (std::string bytes : {EncodeChunk(chunk), EncodeChunk(chunk, EncodeOptions{1, SIZE_MAX})}) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      std::string bad = bytes;
      bad[i] ^= 0x10;
      ChangeChunk out;
      Status s = DecodeChunk(bad, "chunk 0 of commit 0/10", &out);
      ASSERT_FALSE(s.ok()) << "byte " << i;
      // Flipping the version byte upwards reads as a newer format; everything else is corrupt.
      if (i == 0 && static_cast<uint8_t>(bad[0]) > kFormatVersion) {
        EXPECT_EQ(s.code(), ErrorCode::kQueueFormat);
      } else {
        EXPECT_EQ(s.code(), ErrorCode::kQueueCorrupt) << "byte " << i;
        EXPECT_NE(s.message().find("chunk 0 of commit 0/10"), std::string::npos) << s.message();
      }
    }
  }
}

TEST(CodecTest, TruncatedRecordsAreCorrupt) {
  std::string bytes = EncodeChunk(EveryKindChunk());
  for (size_t n = 0; n < bytes.size(); ++n) {
    ChangeChunk out;
    Status s = DecodeChunk(bytes.substr(0, n), "c", &out);
    EXPECT_EQ(s.code(), ErrorCode::kQueueCorrupt) << n;
  }
}

// A relation record in the format-1 layout (column types as one "schema.name" string). It still
// reads: the type splits at the first dot.
TEST(CodecTest, Version1RelationStillReads) {
  RelationDescriptor out;
  ASSERT_TRUE(DecodeRelation(testing::FormatOneRelation7(), "relation 7 version 1", &out).ok());
  EXPECT_EQ(out.schema, "public");
  EXPECT_EQ(out.name, "t");
  ASSERT_EQ(out.columns.size(), 2u);
  EXPECT_EQ(out.columns[0].type, (QualifiedName{"pg_catalog", "int4"}));
  EXPECT_TRUE(out.columns[0].is_key);
  EXPECT_EQ(out.columns[1].type, (QualifiedName{"Shop Data", "address"}));
  EXPECT_EQ(out.columns[1].type_oid, 16500u);
  EXPECT_EQ(SplitV1TypeName("int4"), (QualifiedName{"pg_catalog", "int4"}));
  // What this build writes is version 2, with the parts apart.
  EXPECT_EQ(static_cast<uint8_t>(EncodeRelation(out)[0]), 2);
}

TEST(CodecTest, NewerFormatIsRefused) {
  std::string bytes = EncodeRelation(MakeRelation(1));
  bytes[0] = static_cast<char>(kFormatVersion + 1);
  RelationDescriptor out;
  Status s = DecodeRelation(bytes, "relation 1 version 1", &out);
  EXPECT_EQ(s.code(), ErrorCode::kQueueFormat);
  EXPECT_NE(s.message().find(fmt::format("format version {}", kFormatVersion + 1)),
            std::string::npos)
      << s.message();
}

TEST(CodecTest, WrongTypeIsCorrupt) {
  StoredCommit s;
  ChangeChunk out;
  EXPECT_EQ(DecodeChunk(EncodeCommit(s), "x", &out).code(), ErrorCode::kQueueCorrupt);
}

TEST(CodecTest, BigEndianKeysSortAsNumbers) {
  std::string a, b;
  PutBigEndian64(&a, 0x00000001FFFFFFFFull);
  PutBigEndian64(&b, 0x0000000200000000ull);
  EXPECT_LT(a, b);
  EXPECT_EQ(GetBigEndian64(a.data()), 0x00000001FFFFFFFFull);
  std::string c;
  PutBigEndian32(&c, 0xDEADBEEF);
  EXPECT_EQ(GetBigEndian32(c.data()), 0xDEADBEEFu);
}

}  // namespace
}  // namespace pgbaton::queue
