// Issue 20: names and types quoted right everywhere, proven on a generated schema. A seeded
// generator (schema_gen.h) builds schemas, tables, types, sequences, indexes and partitions whose
// names are the hard cases, and rows of unusual values; then `pgbaton copy`, `pgbaton run` while
// the test writes inserts, updates and deletes, `pgbaton verify` and `pgbaton cutover` (read-only
// fence), on 13 -> 17 and 15 -> 18. Every table must be identical row for row (a digest of the
// ordered text form of its rows), and every sequence must have the source's value.
// PGBATON_SCHEMA_SEED=N explores another schema; the seed is printed with every failure.
// PGBATON_SCHEMA_WRITES=N writes N statements instead of 240 (a longer run by hand).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/integration/schema/schema_gen.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::schema_testing {
namespace {

using testing::ChildProcess;
using testing::CommandResult;
using testing::PgbatonBinary;
using testing::PgServer;
using testing::ProcessOptions;
using testing::RunCommand;

constexpr uint64_t kCiSeed = 20;  // the schema CI runs; PGBATON_SCHEMA_SEED explores others
constexpr int kInitialRows = 20;  // per table, before the copy
constexpr int kWrites = 240;      // statements while `run` streams (PGBATON_SCHEMA_WRITES)

struct Majors {
  int source;
  int target;
};

class SchemaQuotingTest : public ::testing::TestWithParam<Majors> {};

int Writes() {
  const char* s = std::getenv("PGBATON_SCHEMA_WRITES");
  return s != nullptr && *s != '\0' ? std::atoi(s) : kWrites;
}

uint64_t Seed() {
  const char* s = std::getenv("PGBATON_SCHEMA_SEED");
  return s != nullptr && *s != '\0' ? std::strtoull(s, nullptr, 10) : kCiSeed;
}

// Output settings that make a row's text the same on both majors (as verify sets them).
constexpr const char* kTextSettings =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'";

// Per table: row count and md5 of its rows' text, ordered by that text (byte order).
Result<std::map<std::string, std::string>> Digests(PgServer& server,
                                                   const std::vector<QualifiedName>& tables) {
  PGB_ASSIGN_OR_RETURN(PgConn c, server.Connect("app"));
  PGB_RETURN_IF_ERROR(c.Run(kTextSettings));
  std::map<std::string, std::string> out;
  for (const auto& t : tables) {
    std::string q = QuoteQualified(t);
    PGB_ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec(fmt::format("select count(*), coalesce(md5(string_agg(t::text, E'\\n' order by "
                           "t::text collate \"C\")), '') from only {} t",
                           q)));
    out[q] = r.GetString(0, 0) + " rows, md5 " + r.GetString(0, 1);
  }
  return out;
}

// Every sequence of the generated schemas (identity sequences too, whose names PostgreSQL made).
Result<std::map<std::string, std::string>> SequenceValues(PgServer& server) {
  PGB_ASSIGN_OR_RETURN(PgConn c, server.Connect("app"));
  PGB_ASSIGN_OR_RETURN(PgResult r, c.Exec("select schemaname, sequencename, last_value from "
                                          "pg_catalog.pg_sequences where schemaname <> 'pgbaton'"));
  std::map<std::string, std::string> out;
  for (int i = 0; i < r.rows(); ++i) {
    out[QuoteQualified(r.GetString(i, 0), r.GetString(i, 1))] =
        r.IsNull(i, 2) ? "never called" : r.GetString(i, 2);
  }
  return out;
}

std::string Show(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += fmt::format("  {}: {}\n", k, v);
  return out;
}

TEST_P(SchemaQuotingTest, CopyRunVerifyCutoverKeepEveryRow) {
  const uint64_t seed = Seed();
  SCOPED_TRACE(fmt::format("PGBATON_SCHEMA_SEED={} (source {}, target {})", seed, GetParam().source,
                           GetParam().target));
  std::fprintf(stderr, "PGBATON_SCHEMA_SEED=%llu\n", static_cast<unsigned long long>(seed));
  SchemaGenerator gen(seed, GetParam().source);

  auto source = pgbaton::testing::StartServer(GetParam().source);
  auto target = pgbaton::testing::StartServer(GetParam().target);
  ASSERT_TRUE(source && target);
  ASSERT_TRUE(source->Exec("create database app").ok());
  ASSERT_TRUE(target->Exec("create database app").ok());

  auto src = source->Connect("app");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  std::string all_ddl;
  for (const std::string& sql : gen.ddl()) all_ddl += sql + ";\n";
  for (const std::string& sql : gen.ddl()) {
    Status st = src->Run(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nthe generated DDL:\n" << all_ddl;
  }
  ASSERT_TRUE(
      src->Run(fmt::format("select setseed({})", static_cast<double>(seed % 1000) / 1000)).ok());
  for (const GenTable& t : gen.tables()) {
    for (int i = 0; i < kInitialRows; ++i) {
      std::string sql = gen.Insert(t);
      Status st = src->Run(sql);
      ASSERT_TRUE(st.ok()) << sql << ": " << st.ToString();
    }
  }
  const std::vector<QualifiedName> tables = gen.LeafTables();

  // Initial copy: publication, slot, snapshot, schema (pg_dump), data, indexes.
  std::string queue_dir = testing::MakeTempDir("pgbaton-schema-q");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      testing::RemoveTree(dir);
      std::remove((dir + ".run.log").c_str());
    }
  } cleanup{queue_dir};
  std::string source_ci = source->Conninfo("app"), target_ci = target->Conninfo("app");
  CommandResult copy = RunCommand({PgbatonBinary(), "copy", "--source", source_ci, "--target",
                                   target_ci, "--queue-dir", queue_dir});
  ASSERT_EQ(copy.exit_code, 0) << copy.output;

  // Stream while the test writes.
  ProcessOptions po;
  po.stdout_path = queue_dir + ".run.log";
  ChildProcess run({PgbatonBinary(), "run", "--source", source_ci, "--target", target_ci,
                    "--queue-dir", queue_dir, "--group-delay-ms", "50"},
                   po);
  auto run_log = [&] { return testing::ReadFile(po.stdout_path); };
  int written = 0;
  const int writes = Writes();
  while (written < writes) {
    ASSERT_TRUE(src->Run("begin").ok());
    int n = 1 + static_cast<int>(written % 4);
    for (int i = 0; i < n && written < writes; ++i, ++written) {
      std::string sql = gen.RandomWrite();
      Status st = src->Run(sql);
      ASSERT_TRUE(st.ok()) << sql << ": " << st.ToString();
    }
    // Sequences move on the source only: cutover must carry their values over.
    for (const auto& s : gen.Sequences()) {
      std::string sql = "select nextval(" + src->QuoteLiteral(QuoteQualified(s)) + ")";
      if (written % 7 == 0) {
        ASSERT_TRUE(src->Run(sql).ok()) << sql;
      }
    }
    ASSERT_TRUE(src->Run("commit").ok());
  }

  // Caught up: every table identical (bounded wait; `run` must stay up).
  auto want = Digests(*source, tables);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  Result<std::map<std::string, std::string>> got = std::map<std::string, std::string>();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && run.running()) {
    got = Digests(*target, tables);
    if (got.ok() && *got == *want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(*got, *want) << "target after run (running: " << run.running() << "):\n"
                         << Show(*got) << "source:\n"
                         << Show(*want) << "run log:\n"
                         << run_log();
  for (const auto& [table, digest] : *want) {
    EXPECT_NE(digest.rfind("0 rows", 0), 0u) << table << " is empty: the test wrote nothing";
  }
  std::fprintf(stderr, "caught up, identical:\n%s", Show(*want).c_str());

  CommandResult verify =
      RunCommand({PgbatonBinary(), "verify", "--source", source_ci, "--target", target_ci});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  // The same tables named on the command line, quoted as SQL writes them.
  std::string listed;
  for (const auto& t : tables) listed += (listed.empty() ? "" : ",") + QuoteQualified(t);
  CommandResult verify_listed = RunCommand({PgbatonBinary(), "verify", "--source", source_ci,
                                            "--target", target_ci, "--tables", listed});
  EXPECT_EQ(verify_listed.exit_code, 0) << verify_listed.output;
  EXPECT_NE(verify_listed.output.find(fmt::format("{} tables compared", tables.size())),
            std::string::npos)
      << verify_listed.output;

  // The queue carries the composite's schema and name apart, exactly as on the source.
  CommandResult inspect = RunCommand({PgbatonBinary(), "queue", "inspect", "--queue-dir", queue_dir,
                                      "--relations", "--json", "--limit", "1"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  bool composite_seen = false;
  std::istringstream lines(inspect.output);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("columns")) continue;
    for (const auto& c : j["columns"]) {
      composite_seen |= c["type_schema"] == gen.composite().schema &&
                        c["type_name"] == gen.composite().name &&
                        c["type"] == QuoteQualified(gen.composite());
    }
  }
  EXPECT_TRUE(composite_seen) << inspect.output.substr(0, 4000);

  // Indexes (post-data, named from the hard cases) are all on the target.
  const char* indexes =
      "select string_agg(quote_ident(schemaname) || '.' || quote_ident(indexname), ', ' order by "
      "schemaname collate \"C\", indexname collate \"C\") from pg_indexes where schemaname not in "
      "('pg_catalog', 'information_schema', 'pgbaton')";
  auto source_indexes = source->Query(indexes, "app");
  auto target_indexes = target->Query(indexes, "app");
  ASSERT_TRUE(source_indexes.ok() && target_indexes.ok());
  EXPECT_NE(source_indexes->find("\"Shop Data\"."), std::string::npos) << *source_indexes;
  EXPECT_EQ(*target_indexes, *source_indexes);

  CommandResult cutover = RunCommand({PgbatonBinary(), "cutover", "--source", source_ci, "--target",
                                      target_ci, "--queue-dir", queue_dir, "--fence", "readonly",
                                      "--flip", "command:true", "--max-lag", "30s"});
  EXPECT_EQ(cutover.exit_code, 0) << cutover.output << "\nrun log:\n" << run_log();
  run.Signal(SIGTERM);
  if (run.Wait(20000) == -2) run.Kill();

  auto final_source = Digests(*source, tables);
  auto final_target = Digests(*target, tables);
  ASSERT_TRUE(final_source.ok() && final_target.ok());
  EXPECT_EQ(*final_target, *final_source) << Show(*final_target) << "source:\n"
                                          << Show(*final_source);
  auto seq_source = SequenceValues(*source);
  auto seq_target = SequenceValues(*target);
  ASSERT_TRUE(seq_source.ok()) << seq_source.status().ToString();
  ASSERT_TRUE(seq_target.ok()) << seq_target.status().ToString();
  EXPECT_GT(seq_source->size(), gen.Sequences().size());  // and the identity sequence
  EXPECT_EQ(*seq_target, *seq_source) << Show(*seq_target) << "source:\n" << Show(*seq_source);
}

INSTANTIATE_TEST_SUITE_P(Majors, SchemaQuotingTest,
                         ::testing::Values(Majors{12, 17}, Majors{13, 17}, Majors{15, 18}),
                         [](const ::testing::TestParamInfo<Majors>& i) {
                           return fmt::format("From{}To{}", i.param.source, i.param.target);
                         });

}  // namespace
}  // namespace pgbaton::schema_testing
