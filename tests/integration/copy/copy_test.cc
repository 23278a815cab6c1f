// `pgbaton copy` against real servers: 13->17, 15->17 and 15->18 with many types, a partitioned
// table, sequences and a table split into ranges; kill -9 at chosen points and resume; filters;
// the errors a DBA meets first.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>

#include "common/types.h"
#include "tests/support/copy_fixture.h"

namespace pgbaton::testing::copy {
namespace {

Lsn ParseLsn(const std::string& text) {
  auto l = Lsn::Parse(text);
  EXPECT_TRUE(l.ok()) << "not an LSN: \"" << text << "\"";
  return l.ok() ? *l : Lsn();
}

struct Majors {
  int source;
  int target;
};

// The COPY ... FROM STDIN statements in a target's log (log_statement = 'all'), by format.
struct CopyFormats {
  int binary = 0;
  int text = 0;
  int types_binary = 0;  // of the tables "types" and "refs", which must go in text
  std::string lines;
};

CopyFormats CopyFormatsInLog(const std::string& log) {
  CopyFormats f;
  size_t at = 0;
  while ((at = log.find("FROM STDIN", at)) != std::string::npos) {
    size_t begin = log.rfind('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    size_t end = log.find('\n', at);
    std::string line =
        log.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    at = end == std::string::npos ? log.size() : end;
    if (line.find("statement: COPY") == std::string::npos) continue;
    bool binary = line.find("FORMAT binary") != std::string::npos;
    (binary ? f.binary : f.text)++;
    if (binary &&
        (line.find("types") != std::string::npos || line.find("refs") != std::string::npos)) {
      f.types_binary++;
    }
    f.lines += line + "\n";
  }
  return f;
}

class CopyMatrixTest : public ::testing::TestWithParam<Majors> {};

TEST_P(CopyMatrixTest, CopiesSchemaDataIndexesAndSequencesExactly) {
  auto src = StartServer(GetParam().source);
  auto dst = StartServer(GetParam().target);
  ASSERT_TRUE(src && dst);
  CreateSourceSchema(*src, "app");
  ASSERT_TRUE(dst->Exec("CREATE DATABASE app").ok());
  // The target logs every statement of the copy, to see which format each COPY used.
  ASSERT_TRUE(dst->Exec("ALTER DATABASE app SET log_statement = 'all'").ok());
  QueueDir qdir;

  // Small chunks: "big" (~2 MB) is copied in ranges (TID ranges on 15, key ranges on 13).
  CommandResult r = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton",
                            {"--jobs", "3", "--chunk-bytes", "131072", "--progress", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"summary\":\"done\""), std::string::npos) << r.output;
  ExpectSameDatabase(*src, "app", *dst, "app");
  // By default tables of built-in types, enums and domains go in binary; "types" has a composite
  // column and "refs" a regclass (an OID in binary), so they go in text, and the log says which
  // column keeps each there.
  EXPECT_NE(r.output.find("text_tables=2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("public.types (column pr pair)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("public.refs (column rel regclass)"), std::string::npos) << r.output;
  CopyFormats formats = CopyFormatsInLog(dst->LogTail(64 << 20));
  EXPECT_GT(formats.binary, 0) << formats.lines;
  EXPECT_GT(formats.text, 0) << formats.lines;
  EXPECT_EQ(formats.types_binary, 0) << formats.lines;

  // More chunks than tables: at least one table was split.
  size_t at = r.output.find("\"chunks\":");
  ASSERT_NE(at, std::string::npos) << r.output;
  int chunks = std::atoi(r.output.c_str() + at + 9);
  EXPECT_GT(chunks, static_cast<int>(UserTables(*src, "app").size())) << r.output;

  // Every table is recorded as done at the slot's consistent point, which is its sync LSN.
  auto meta = QueueMeta(qdir, "pgbaton", "");
  std::string consistent = meta["copy/consistent_lsn"];
  ASSERT_TRUE(ParseLsn(consistent).IsValid());
  for (const auto& t : UserTables(*src, "app")) {
    EXPECT_EQ(meta["copy/state/" + t], "done") << t;
    EXPECT_EQ(meta["sync_lsn/" + t], consistent) << t;
  }
  EXPECT_EQ(*src->Query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgbaton' "
                        "AND NOT temporary",
                        "app"),
            "1");
  EXPECT_EQ(*src->Query("SELECT puballtables FROM pg_publication WHERE pubname = 'pgbaton'", "app"),
            "t");

  // Running it again changes nothing and succeeds.
  CommandResult again = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", {"--progress", "json"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  ExpectSameDatabase(*src, "app", *dst, "app");

  // --text: every table in text format; the result is the same.
  ASSERT_TRUE(dst->Exec("CREATE DATABASE app_text").ok());
  ASSERT_TRUE(dst->Exec("ALTER DATABASE app_text SET log_statement = 'all'").ok());
  CommandResult b =
      RunCopy(*src, "app", *dst, "app_text", QueueDir(), "text",
              {"--text", "--jobs", "2", "--chunk-bytes", "131072", "--progress", "json"});
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_NE(b.output.find("copying every table in text format"), std::string::npos) << b.output;
  CopyFormats after = CopyFormatsInLog(dst->LogTail(64 << 20));
  EXPECT_EQ(after.binary, formats.binary) << after.lines;
  EXPECT_GT(after.text, formats.text) << after.lines;
  ExpectSameDatabase(*src, "app", *dst, "app_text");

  if (GetParam().target > 15) {
    // pg_dump 15 cannot dump a newer source: a kVersion error with a hint, before any change.
    ASSERT_TRUE(dst->Exec("CREATE DATABASE newer").ok());
    ASSERT_TRUE(dst->Exec("CREATE DATABASE newer_copy").ok());
    CommandResult v =
        RunCopy(*dst, "newer", *dst, "newer_copy", QueueDir(), "pgbaton", {"--progress", "json"});
    EXPECT_EQ(v.exit_code, 14) << v.output;
    EXPECT_NE(v.output.find("pg_dump 15"), std::string::npos) << v.output;
    EXPECT_NE(v.output.find("hint: install the PostgreSQL"), std::string::npos) << v.output;
    EXPECT_EQ(*dst->Query("SELECT count(*) FROM pg_replication_slots", "newer"), "0");
  }
}

INSTANTIATE_TEST_SUITE_P(Majors, CopyMatrixTest,
                         ::testing::Values(Majors{12, 17}, Majors{13, 17}, Majors{15, 17},
                                           Majors{15, 18}),
                         [](const auto& info) {
                           return "From" + std::to_string(info.param.source) + "To" +
                                  std::to_string(info.param.target);
                         });

// kill -9 at each point, run the same command again: the target is identical to the source.
void CrashAndResume(int source_major, const std::vector<std::string>& points) {
  auto src = StartServer(source_major);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  for (size_t i = 0; i < points.size(); ++i) {
    SCOPED_TRACE("crash at " + points[i]);
    std::string db = "crash" + std::to_string(i);
    std::string name = "crash" + std::to_string(i);
    CreateSourceSchema(*src, db);
    ASSERT_TRUE(dst->Exec("CREATE DATABASE " + db).ok());
    QueueDir qdir;
    std::vector<std::string> flags = {"--jobs", "2",          "--chunk-bytes",
                                      "131072", "--progress", "json"};
    std::vector<std::string> crash = flags;
    crash.insert(crash.end(), {"--crash-at", points[i]});
    CommandResult killed = RunCopy(*src, db, *dst, db, qdir, name, crash);
    ASSERT_EQ(killed.signal, SIGKILL) << killed.output;

    CommandResult resumed = RunCopy(*src, db, *dst, db, qdir, name, flags);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    ExpectSameDatabase(*src, db, *dst, db);

    auto meta = QueueMeta(qdir, name, "");
    Lsn consistent = ParseLsn(meta["copy/consistent_lsn"]);
    int later = 0;
    for (const auto& t : UserTables(*src, db)) {
      EXPECT_EQ(meta["copy/state/" + t], "done") << t;
      Lsn sync = ParseLsn(meta["sync_lsn/" + t]);
      EXPECT_GE(sync, consistent) << t;
      later += sync > consistent ? 1 : 0;
    }
    bool during_copy = points[i] == "after-slot" || points[i] == "after-schema" ||
                       points[i].rfind("data:", 0) == 0;
    // Tables copied again after the crash carry the later snapshot's LSN; the others keep the
    // first one. (A post-data point may fall during the data phase, since a table's indexes are
    // built as soon as its data is done: either way is right there.)
    if (during_copy) {
      EXPECT_GT(later, 0);
    } else if (points[i] == "after-data") {
      EXPECT_EQ(later, 0);
    }
    // The streaming slot is the first one; the resume's temporary slot is gone.
    EXPECT_EQ(*src->Query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + name +
                              "' AND NOT temporary",
                          db),
              "1");
  }
}

TEST(CopyCrashTest, KilledDuringDataAndSchemaThenResumed) {
  CrashAndResume(15, {"after-slot", "after-schema", "data:1", "data:7"});
}

TEST(CopyCrashTest, KilledDuringIndexesThenResumed) {
  CrashAndResume(15, {"after-data", "post-data:1", "post-data:5"});
}

TEST(CopyCrashTest, KilledDuringKeyRangeCopyFrom13ThenResumed) { CrashAndResume(13, {"data:4"}); }

TEST(CopyErrorsTest, FiltersReplicaIdentityAndNonEmptyTarget) {
  auto pg = StartServer(15);
  ASSERT_TRUE(pg);

  // Filters: only matching tables are copied and published.
  ASSERT_TRUE(pg->Exec("CREATE DATABASE f_src").ok());
  ASSERT_TRUE(pg->Exec("CREATE DATABASE f_dst").ok());
  ASSERT_TRUE(pg->Exec("CREATE SCHEMA sales; CREATE TABLE public.a (id int PRIMARY KEY); "
                       "CREATE TABLE public.skip_me (id int PRIMARY KEY); "
                       "CREATE TABLE sales.order_1 (id int PRIMARY KEY); "
                       "CREATE TABLE sales.other (id int); "  // no identity, but left out
                       "INSERT INTO public.a SELECT generate_series(1, 10); "
                       "INSERT INTO public.skip_me VALUES (1); "
                       "INSERT INTO sales.order_1 SELECT generate_series(1, 5)",
                       "f_src")
                  .ok());
  QueueDir fq;
  CommandResult f = RunCopy(*pg, "f_src", *pg, "f_dst", fq, "filtered",
                            {"--include", "public.*", "--include", "sales.order_*", "--exclude",
                             "public.skip_*", "--progress", "json"});
  ASSERT_EQ(f.exit_code, 0) << f.output;
  EXPECT_EQ(UserTables(*pg, "f_dst"), (std::vector<std::string>{"public.a", "sales.order_1"}));
  EXPECT_EQ(TableDigest(*pg, "f_src", "public.a"), TableDigest(*pg, "f_dst", "public.a"));
  EXPECT_EQ(TableDigest(*pg, "f_src", "sales.order_1"), TableDigest(*pg, "f_dst", "sales.order_1"));
  EXPECT_EQ(*pg->Query("SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, "
                       "tablename) FROM "
                       "pg_publication_tables WHERE pubname = 'filtered'",
                       "f_src"),
            "public.a,sales.order_1");
  auto meta = QueueMeta(fq, "filtered", "copy/state/");
  EXPECT_EQ(meta.size(), 2u);

  // A table without replica identity: named, with the fix, and nothing created.
  ASSERT_TRUE(pg->Exec("CREATE DATABASE n_src").ok());
  ASSERT_TRUE(pg->Exec("CREATE DATABASE n_dst").ok());
  ASSERT_TRUE(pg->Exec("CREATE TABLE keyless (a int, b text)", "n_src").ok());
  CommandResult n =
      RunCopy(*pg, "n_src", *pg, "n_dst", QueueDir(), "noident", {"--progress", "json"});
  EXPECT_EQ(n.exit_code, 30) << n.output;
  EXPECT_NE(n.output.find("table \"public.keyless\""), std::string::npos) << n.output;
  EXPECT_NE(n.output.find("REPLICA IDENTITY FULL"), std::string::npos) << n.output;
  EXPECT_EQ(*pg->Query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'noident'"),
            "0");

  // Rows on the target that the copy did not write: kTargetNotEmpty naming the table.
  ASSERT_TRUE(pg->Exec("CREATE DATABASE t_src").ok());
  ASSERT_TRUE(pg->Exec("CREATE DATABASE t_dst").ok());
  ASSERT_TRUE(
      pg->Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)", "t_src").ok());
  QueueDir tq;
  CommandResult first = RunCopy(*pg, "t_src", *pg, "t_dst", tq, "notempty",
                                {"--progress", "json", "--crash-at", "after-schema"});
  ASSERT_EQ(first.signal, SIGKILL) << first.output;
  ASSERT_TRUE(pg->Exec("INSERT INTO t VALUES (99)", "t_dst").ok());
  CommandResult second =
      RunCopy(*pg, "t_src", *pg, "t_dst", tq, "notempty", {"--progress", "json"});
  EXPECT_EQ(second.exit_code, 60) << second.output;
  EXPECT_NE(second.output.find("table \"public.t\""), std::string::npos) << second.output;
  EXPECT_EQ(*pg->Query("SELECT string_agg(id::text, ',') FROM t", "t_dst"), "99");
}

// A first run into a database that already has one of the source's tables, with rows: refused
// before anything is created on either side, naming the table; the rows stay. Once the table
// is out of the way, the same command completes.
TEST(CopyErrorsTest, TargetThatAlreadyHoldsATableIsRefusedBeforeAnyChange) {
  auto pg = StartServer(15);
  ASSERT_TRUE(pg);
  ASSERT_TRUE(pg->Exec("CREATE DATABASE src").ok());
  ASSERT_TRUE(pg->Exec("CREATE DATABASE dst").ok());
  ASSERT_TRUE(pg->Exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY); "
                       "INSERT INTO t SELECT generate_series(1, 50)",
                       "src")
                  .ok());
  ASSERT_TRUE(
      pg->Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (99)", "dst").ok());
  QueueDir qdir;
  CommandResult r = RunCopy(*pg, "src", *pg, "dst", qdir, "held", {"--progress", "json"});
  EXPECT_EQ(r.exit_code, 60) << r.output;
  EXPECT_NE(r.output.find("table \"public.t\" already exists on target"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("and holds rows"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hint: copy into an empty database, or drop what is in the way (DROP "
                          "TABLE \"public\".\"t\")"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(*pg->Query("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(*pg->Query("SELECT count(*) FROM pg_publication", "src"), "0");
  EXPECT_EQ(*pg->Query("SELECT string_agg(id::text, ',') FROM t", "dst"), "99");
  EXPECT_EQ(UserTables(*pg, "dst"), std::vector<std::string>{"public.t"});

  ASSERT_TRUE(pg->Exec("DROP TABLE t", "dst").ok());
  CommandResult again = RunCopy(*pg, "src", *pg, "dst", qdir, "held", {"--progress", "json"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(TableDigest(*pg, "src", "public.t"), TableDigest(*pg, "dst", "public.t"));
  EXPECT_EQ(UserTables(*pg, "dst"), (std::vector<std::string>{"public.t", "public.u"}));
}

}  // namespace
}  // namespace pgbaton::testing::copy
