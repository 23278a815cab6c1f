// Golden captures from real servers (13, 15, 17, 18; see tests/data/pgoutput/README.md), parsed
// and assembled, with their contents asserted.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "decoder/pgoutput_parser.h"
#include "tests/unit/decoder/golden_util.h"

namespace pgbaton::decoder::testing {
namespace {

using queue::ChangeKind;
using queue::Value;
using queue::ValueKind;

Value T(std::string s) { return Value{ValueKind::kText, std::move(s)}; }
Value N() { return Value{ValueKind::kNull, {}}; }
Value U() { return Value{ValueKind::kUnchangedToast, {}}; }

class GoldenTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    auto msgs = ReadCaptureFile(CapturePath(GetParam(), "stream.bin"));
    ASSERT_TRUE(msgs.ok()) << msgs.status().ToString();
    msgs_ = std::move(*msgs);
    auto types = GoldenTypes();
    Status s = AssembleCapture(msgs_, &q_, &types);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (const auto& r : q_.relations) rel_[r.name + "#" + std::to_string(r.version)] = r;
  }
  int major() const { return GetParam(); }
  // The committed transaction whose first change inserts `first` into `table`, or null.
  const FakeTxn* Find(const std::string& table, const std::string& first) const {
    for (const auto& t : q_.committed) {
      for (const auto& c : t.Changes()) {
        if (c.new_tuple && !c.new_tuple->empty() && (*c.new_tuple)[0] == T(first) &&
            RelName(c.relation) == table) {
          return &t;
        }
      }
    }
    return nullptr;
  }
  std::string RelName(RelationId id) const {
    for (const auto& r : q_.relations) {
      if (r.id == id) return r.name;
    }
    return "?";
  }
  // Every change of every committed transaction on `table`.
  std::vector<queue::Change> ChangesOn(const std::string& table) const {
    std::vector<queue::Change> out;
    for (const auto& t : q_.committed) {
      for (const auto& c : t.Changes()) {
        if (c.kind != ChangeKind::kTruncate && c.kind != ChangeKind::kMessage &&
            RelName(c.relation) == table) {
          out.push_back(c);
        }
      }
    }
    return out;
  }

  std::vector<CapturedMessage> msgs_;
  FakeWorkQueue q_;
  std::map<std::string, queue::RelationDescriptor> rel_;
};

TEST_P(GoldenTest, EveryMessageParses) {
  PgOutputParser p;
  std::set<std::string> kinds;
  for (const auto& m : msgs_) {
    if (m.payload.empty()) {
      EXPECT_EQ(major(), 13) << "only PostgreSQL 13 sends empty messages";
      continue;
    }
    auto r = p.Parse(m.payload);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    kinds.insert(std::string(MessageName(*r)));
  }
  std::set<std::string> want = {"begin",  "commit", "type",   "relation",
                                "insert", "update", "delete", "truncate"};
  if (major() >= 14) {
    for (const char* k :
         {"message", "stream start", "stream stop", "stream commit", "stream abort"})
      want.insert(k);
  }
  if (major() == 15) want.insert("origin");  // 13 sends it empty, 16+ filters it (origin none)
  EXPECT_EQ(kinds, want);
}

TEST_P(GoldenTest, RelationDescriptorsCarryTypeNames) {
  ASSERT_TRUE(rel_.count("types_t#1"));
  const auto& d = rel_["types_t#1"];
  EXPECT_EQ(d.schema, "public");
  EXPECT_EQ(d.identity, queue::ReplicaIdentity::kDefault);
  std::vector<std::string> names, types;
  for (const auto& c : d.columns) {
    names.push_back(c.name);
    types.push_back(c.type.schema + "|" + c.type.name);  // structurally apart, never joined
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"id", "n", "j", "ia", "ta", "b", "m", "ma", "d", "ts", "tstz",
                                      "iv", "u", "ip", "t", "f8", "bo", "dt", "big"}));
  EXPECT_EQ(types,
            (std::vector<std::string>{
                "pg_catalog|int4", "pg_catalog|numeric", "pg_catalog|jsonb", "pg_catalog|_int4",
                "pg_catalog|_text", "pg_catalog|bytea", "public|mood", "public|_mood",
                // pgoutput names a domain by its base type
                "pg_catalog|int4", "pg_catalog|timestamp", "pg_catalog|timestamptz",
                "pg_catalog|interval", "pg_catalog|uuid", "pg_catalog|inet", "pg_catalog|text",
                "pg_catalog|float8", "pg_catalog|bool", "pg_catalog|date", "pg_catalog|int8"}));
  EXPECT_TRUE(d.columns[0].is_key);
  EXPECT_FALSE(d.columns[1].is_key);
  EXPECT_EQ(d.columns[1].type_modifier, (20 << 16 | 5) + 4);  // numeric(20,5)
  // Replica identity full marks every column as key.
  ASSERT_TRUE(rel_.count("full_t#1"));
  EXPECT_EQ(rel_["full_t#1"].identity, queue::ReplicaIdentity::kFull);
  EXPECT_TRUE(rel_["full_t#1"].columns[1].is_key);
  // ALTER TABLE ADD COLUMN made a second version of parent_t, and only two: resent identical
  // descriptions do not make new versions.
  ASSERT_TRUE(rel_.count("parent_t#2"));
  EXPECT_FALSE(rel_.count("parent_t#3"));
  EXPECT_EQ(rel_["parent_t#2"].columns.size(), 2u);
  EXPECT_EQ(rel_["parent_t#2"].columns[1].name, "note");
}

TEST_P(GoldenTest, ValuesOfEveryType) {
  const FakeTxn* t = Find("types_t", "1");
  ASSERT_NE(t, nullptr);
  auto ch = t->Changes();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].kind, ChangeKind::kInsert);
  EXPECT_EQ(ch[0].relation_version, 1u);
  EXPECT_EQ(
      *ch[0].new_tuple,
      (queue::Tuple{T("1"), T("12345.67891"), T("{\"a\": [1, 2, {\"b\": null}], \"c\": \"ü\"}"),
                    T("{1,2,3}"), T("{\"x y\",NULL,z}"), T("\\xdeadbeef"), T("happy"),
                    T("{sad,ok}"), T("42"), T("2024-02-29 12:34:56.789"),
                    T("2024-02-29 10:34:56.789+00"), T("1 year 2 mons 3 days 04:05:06.5"),
                    T("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), T("192.168.0.1/24"),
                    T("héllo wörld | Привет мир | こんにちは世界 | مرحبا بالعالم | 🐘"),
                    T("3.5e-07"), T("t"), T("2024-02-29"), T("9223372036854775807")}));
  EXPECT_EQ(t->commit.change_count, 1u);
  EXPECT_EQ(t->commit.chunk_count, 1u);
  EXPECT_GT(t->commit.end_lsn, t->commit.commit_lsn);

  const FakeTxn* nulls = Find("types_t", "2");
  ASSERT_NE(nulls, nullptr);
  auto row = *nulls->Changes()[0].new_tuple;
  EXPECT_EQ(row.size(), 19u);
  EXPECT_TRUE(std::all_of(row.begin() + 1, row.end(), [](const Value& v) { return v == N(); }));
}

TEST_P(GoldenTest, ToastedValuesAndUnchangedMarker) {
  auto ch = ChangesOn("types_t");
  // insert 1, insert 2, insert 3 (toasted), update 3, update 2 -> 4, delete 1
  ASSERT_EQ(ch.size(), 6u);
  const Value& b = (*ch[2].new_tuple)[5];
  EXPECT_EQ(b.kind, ValueKind::kText);
  EXPECT_EQ(b.data.size(), 2u + 64000u);  // "\x" + 32000 bytes in hex
  EXPECT_EQ(b.data.substr(0, 34), "\\xc4ca4238a0b923820dcc509a6f75849b");  // md5('1')
  // UPDATE t = 'updated' left the TOASTed bytea unchanged: the server did not send it.
  EXPECT_EQ(ch[3].kind, ChangeKind::kUpdate);
  EXPECT_FALSE(ch[3].old_tuple.has_value());
  EXPECT_EQ((*ch[3].new_tuple)[5], U());
  EXPECT_EQ((*ch[3].new_tuple)[14], T("updated"));
  // Key change: old key 'K'.
  EXPECT_EQ(ch[4].kind, ChangeKind::kUpdate);
  ASSERT_TRUE(ch[4].old_tuple.has_value());
  EXPECT_TRUE(ch[4].old_is_key_only);
  EXPECT_EQ((*ch[4].old_tuple)[0], T("2"));
  EXPECT_EQ((*ch[4].new_tuple)[0], T("4"));
  // Delete by key.
  EXPECT_EQ(ch[5].kind, ChangeKind::kDelete);
  EXPECT_TRUE(ch[5].old_is_key_only);
  EXPECT_EQ((*ch[5].old_tuple)[0], T("1"));
  EXPECT_FALSE(ch[5].new_tuple.has_value());
}

TEST_P(GoldenTest, ReplicaIdentityFullSendsOldRows) {
  auto ch = ChangesOn("full_t");
  ASSERT_EQ(ch.size(), 4u);
  EXPECT_EQ(ch[2].kind, ChangeKind::kUpdate);
  EXPECT_FALSE(ch[2].old_is_key_only);
  EXPECT_EQ(*ch[2].old_tuple, (queue::Tuple{T("1"), T("one")}));
  EXPECT_EQ(*ch[2].new_tuple, (queue::Tuple{T("1"), T("uno")}));
  EXPECT_EQ(ch[3].kind, ChangeKind::kDelete);
  EXPECT_FALSE(ch[3].old_is_key_only);
  EXPECT_EQ(*ch[3].old_tuple, (queue::Tuple{T("2"), T("two")}));
}

TEST_P(GoldenTest, TruncateFlags) {
  std::vector<queue::Change> truncs;
  for (const auto& t : q_.committed) {
    for (const auto& c : t.Changes()) {
      if (c.kind == ChangeKind::kTruncate) truncs.push_back(c);
    }
  }
  ASSERT_EQ(truncs.size(), 2u);
  EXPECT_EQ(truncs[0].truncate_flags, queue::kTruncateCascade);
  ASSERT_EQ(truncs[0].truncated.size(), 2u);
  std::set<std::string> names = {RelName(truncs[0].truncated[0]), RelName(truncs[0].truncated[1])};
  EXPECT_EQ(names, (std::set<std::string>{"parent_t", "child_t"}));
  EXPECT_EQ(truncs[1].truncate_flags, queue::kTruncateRestartIdentity);
  ASSERT_EQ(truncs[1].truncated.size(), 1u);
  EXPECT_EQ(RelName(truncs[1].truncated[0]), "full_t");
}

TEST_P(GoldenTest, LogicalMessages) {
  std::vector<std::pair<std::string, size_t>> msgs;  // content, changes in its transaction
  for (const auto& t : q_.committed) {
    for (const auto& c : t.Changes()) {
      if (c.kind == ChangeKind::kMessage) {
        EXPECT_EQ(c.message_prefix, "pgb");
        msgs.emplace_back(c.message_content, t.commit.change_count);
      }
    }
  }
  if (major() == 13) {
    EXPECT_TRUE(msgs.empty()) << "PostgreSQL 13's pgoutput has no messages option";
    return;
  }
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0], std::make_pair(std::string("transactional message"), size_t{2}));
  EXPECT_EQ(msgs[1], std::make_pair(std::string("non-transactional message"), size_t{1}));
}

TEST_P(GoldenTest, StreamedTransactionsDropAbortedSubtransactions) {
  auto ch = ChangesOn("big_t");
  // 600 'x' rows + 1 row after the rolled-back savepoint + 600 'p' rows (prepared, committed).
  // The 600 'y' rows of the rolled-back savepoint and the 600 'z' rows of the aborted
  // transaction are gone.
  std::map<char, int> by_payload;
  for (const auto& c : ch) by_payload[(*c.new_tuple)[1].data[0]]++;
  EXPECT_EQ(by_payload, (std::map<char, int>{{'a', 1}, {'p', 600}, {'x', 600}}));
  const FakeTxn* t = Find("big_t", "1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->commit.change_count, 601u);
  EXPECT_EQ(t->Changes().back().new_tuple->at(1), T("after"));
  if (major() >= 14) {
    // Streamed in several blocks, so several chunks even though each is far below 1 MiB.
    EXPECT_GT(t->commit.chunk_count, 1u);
  }
}

TEST_P(GoldenTest, RolledBackAndPreparedTransactions) {
  EXPECT_EQ(Find("parent_t", "99"), nullptr) << "a rolled-back transaction was queued";
  EXPECT_NE(Find("parent_t", "10"), nullptr) << "COMMIT PREPARED 'g1'";
  EXPECT_EQ(Find("parent_t", "11"), nullptr) << "ROLLBACK PREPARED 'g2'";
  const FakeTxn* note = Find("parent_t", "12");
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->Changes()[0].relation_version, 2u);
  EXPECT_EQ(*note->Changes()[0].new_tuple, (queue::Tuple{T("12"), T("with note")}));
}

TEST_P(GoldenTest, OriginsAndCommitOrder) {
  const FakeTxn* o = Find("parent_t", "20");
  if (major() >= 16) {
    EXPECT_EQ(o, nullptr) << "origin 'none' must filter changes applied by a replication origin";
  } else {
    ASSERT_NE(o, nullptr);
    // PostgreSQL 13 sends the origin message empty; 15 names it.
    EXPECT_EQ(o->commit.origin, major() == 13 ? "" : "elsewhere");
    if (major() == 15) {
      EXPECT_EQ(o->commit.origin_lsn, Lsn(0xABCDEF));
    }
  }
  // 18 transactions with changes, plus: on 13 the ALTER TABLE's empty transaction (13 sends
  // empty transactions, 15+ skip them) and the origin's; on 15 the non-transactional message
  // and the origin's; on 17 and 18 the message only.
  std::map<int, size_t> expected = {{13, 20}, {15, 20}, {17, 19}, {18, 19}};
  EXPECT_EQ(q_.committed.size(), expected[major()]);
  for (size_t i = 1; i < q_.committed.size(); ++i) {
    EXPECT_LT(q_.committed[i - 1].commit.commit_lsn, q_.committed[i].commit.commit_lsn);
  }
  EXPECT_TRUE(q_.open.empty()) << "chunks left without a commit";
}

TEST_P(GoldenTest, SmallChunksAndLateAppendsGiveTheSameTransactions) {
  // Chunks of ~4 KiB and one Append per 500 messages: the same changes, more chunks.
  FakeWorkQueue q2;
  auto types = GoldenTypes();
  ASSERT_TRUE(AssembleCapture(msgs_, &q2, &types, 4096, 500).ok());
  ASSERT_EQ(q2.committed.size(), q_.committed.size());
  size_t more = 0;
  for (size_t i = 0; i < q2.committed.size(); ++i) {
    EXPECT_EQ(q2.committed[i].commit.commit_lsn, q_.committed[i].commit.commit_lsn);
    EXPECT_EQ(q2.committed[i].Changes(), q_.committed[i].Changes());
    more += q2.committed[i].chunks.size() > q_.committed[i].chunks.size();
  }
  EXPECT_GT(more, 0u);
}

INSTANTIATE_TEST_SUITE_P(Majors, GoldenTest, ::testing::Values(13, 15, 17, 18),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

class TwoPhaseGoldenTest : public ::testing::TestWithParam<int> {};

TEST_P(TwoPhaseGoldenTest, TwoPhaseMessages) {
  auto msgs = ReadCaptureFile(CapturePath(GetParam(), "twophase.bin"));
  ASSERT_TRUE(msgs.ok()) << msgs.status().ToString();
  PgOutputParser p;
  std::vector<std::string> seen;  // "kind gid"
  for (const auto& m : *msgs) {
    auto r = p.Parse(m.payload);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::visit(
        [&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, BeginPrepareMsg> || std::is_same_v<X, PrepareMsg> ||
                        std::is_same_v<X, CommitPreparedMsg> ||
                        std::is_same_v<X, RollbackPreparedMsg>) {
            seen.push_back(std::string(MessageName(*r)) + " " + x.gid);
          }
        },
        *r);
    if (auto* pr = std::get_if<PrepareMsg>(&*r)) {
      EXPECT_GT(pr->end_lsn, pr->prepare_lsn);
    }
  }
  EXPECT_EQ(seen,
            (std::vector<std::string>{"begin prepare g1", "prepare g1", "commit prepared g1",
                                      "begin prepare g2", "prepare g2", "rollback prepared g2",
                                      "stream prepare g3", "commit prepared g3"}));
  // The decoder streams without two_phase: the assembler refuses these messages clearly.
  FakeWorkQueue q;
  auto types = GoldenTypes();
  Status s = AssembleCapture(*msgs, &q, &types);
  EXPECT_EQ(s.code(), ErrorCode::kProtocol);
  EXPECT_NE(s.message().find("unexpected two-phase message (begin prepare) at LSN"),
            std::string::npos)
      << s.message();
}

INSTANTIATE_TEST_SUITE_P(Majors, TwoPhaseGoldenTest, ::testing::Values(15, 17, 18),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

}  // namespace
}  // namespace pgbaton::decoder::testing
