// Cluster mode (--databases) against real servers: three databases whose names need quoting,
// writes going on in two of them, `copy --databases all` then `run --databases all` in one process
// (killed with SIGKILL 10 times and started again), and every database identical row for row;
// `migrate --databases all` onto a target without the databases (the globals carried first),
// killed and resumed, identical, with one metrics endpoint labelled per database; `status`
// shows a line per database and a total; `cleanup` removes every database's slot, publication,
// origin and queue. Bad input: an unknown database, a database both named and excluded, a
// database dropped on the source mid-migration, a target without the database: each a clear error
// with its code, nothing changed.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/copy_fixture.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_server.h"

namespace pgbaton::testing {
namespace {

using copy::QueueDir;

// The databases: a plain name, one with a space and capitals, a reserved word.
const std::vector<std::string> kDatabases = {"app", "Shop Data", "select"};

constexpr const char* kSchema = R"SQL(
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Order" (id int PRIMARY KEY, "Amount" int NOT NULL, note text);
INSERT INTO "Sales Data"."Order" SELECT i, 0, repeat('n', 50) FROM generate_series(1, 5000) i;
CREATE TABLE hist (id bigserial PRIMARY KEY, order_id int, "select" text);
)SQL";
const std::vector<std::string> kTables = {"\"Sales Data\".\"Order\"", "public.hist"};

std::string NextWrite(std::mt19937& rng, int committed) {
  int id = 1 + static_cast<int>(rng() % 5000);
  return fmt::format(
      "BEGIN; UPDATE \"Sales Data\".\"Order\" SET \"Amount\" = \"Amount\" + 1 WHERE id = {0}; "
      "INSERT INTO hist (order_id, \"select\") VALUES ({0}, 'w{1}'); COMMIT",
      id, committed);
}

std::string Quoted(const std::string& db) {
  std::string out = "\"";
  for (char c : db) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

struct Pair {
  int source;
  int target;
};

class ClusterTest : public ::testing::TestWithParam<Pair> {
 protected:
  void SetUp() override {
    src_ = StartServer(GetParam().source);
    dst_ = StartServer(GetParam().target);
    ASSERT_TRUE(src_ && dst_);
    for (const std::string& db : kDatabases) {
      ASSERT_TRUE(src_->Exec("CREATE DATABASE " + Quoted(db)).ok());
      ASSERT_TRUE(src_->Exec(kSchema, db).ok()) << db;
      ASSERT_TRUE(dst_->Exec("CREATE DATABASE " + Quoted(db)).ok());
    }
    // The maintenance database has a table too: --databases all leaves it out.
    ASSERT_TRUE(src_->Exec("CREATE TABLE not_moved (id int PRIMARY KEY)").ok());
  }

  std::vector<std::string> Verb(const std::string& verb,
                                const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {
        PgbatonBinary(),  "--name",   "pgbaton",        verb,          "--source",
        src_->Conninfo(), "--target", dst_->Conninfo(), "--queue-dir", qdir_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // verify, which takes no queue, for every database.
  std::vector<std::string> Verify(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {
        PgbatonBinary(),  "--name",   "pgbaton",        "verify",      "--source",
        src_->Conninfo(), "--target", dst_->Conninfo(), "--databases", "all"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // The writers (which must have written) stop; `run` then applies everything up to the source's
  // position now, and every database matches the source.
  void StopWritersAndRunToTheEnd(BackgroundWriter& app, BackgroundWriter& shop) {
    EXPECT_GT(app.committed(), 20);
    EXPECT_GT(shop.committed(), 20);
    app.Stop();
    shop.Stop();
    ASSERT_EQ(app.error(), "");
    ASSERT_EQ(shop.error(), "");

    CommandResult run = RunCommand(StopAtNow(Verb("run", {"--databases", "all"}), *src_));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    ExpectEveryDatabaseIdentical();
  }

  void ExpectEveryDatabaseIdentical() {
    for (const std::string& db : kDatabases) {
      EXPECT_EQ(TablesDigest(*src_, db, kTables), TablesDigest(*dst_, db, kTables)) << db;
    }
    auto moved = dst_->Query("SELECT count(*) FROM pg_tables WHERE tablename = 'not_moved'");
    ASSERT_TRUE(moved.ok());
    EXPECT_EQ(*moved, "0") << "the maintenance database was migrated without being named";
  }

  std::unique_ptr<PgServer> src_;
  std::unique_ptr<PgServer> dst_;
  QueueDir qdir_;
};

TEST_P(ClusterTest, CopyThenRunEveryDatabaseUnderWritesKilledAndResumedEndsIdentical) {
  BackgroundWriter app(src_->Conninfo("app"), 3, NextWrite);
  BackgroundWriter shop(src_->Conninfo("Shop Data"), 5, NextWrite);

  CommandResult copy = RunCommand(Verb("copy", {"--databases", "all", "--jobs", "2"}));
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  // One slot per database, named from --name and the database.
  // A name that is no slot name ("Shop Data") is spelled in lowercase with a hash of it.
  auto slots = src_->Query(
      "SELECT string_agg(database || '=' || slot_name, ',' ORDER BY slot_name) FROM "
      "pg_replication_slots");
  ASSERT_TRUE(slots.ok());
  auto hashed = src_->Query(
      "SELECT slot_name ~ '^pgbaton_shop_data_[0-9a-f]{8}$' FROM pg_replication_slots WHERE "
      "database = 'Shop Data'");
  ASSERT_TRUE(hashed.ok()) << *slots;
  EXPECT_EQ(*hashed, "t") << *slots;
  EXPECT_EQ(slots->substr(0, slots->find(",Shop")), "app=pgbaton_app,select=pgbaton_select")
      << *slots;

  // `run` for the whole cluster, killed at random points while the writers write (10 rounds).
  std::mt19937 rng(11);
  for (int round = 0; round < 10; ++round) {
    ProcessOptions po;
    po.stdout_path = qdir_.path() + fmt::format(".run{}.log", round);
    ChildProcess run(Verb("run", {"--databases", "all"}), po);
    std::this_thread::sleep_for(std::chrono::milliseconds(800 + rng() % 2000));
    run.Signal(SIGKILL);
    run.Wait(10000);
  }
  ASSERT_NO_FATAL_FAILURE(StopWritersAndRunToTheEnd(app, shop));

  // status: one entry per database and a total with nothing left to apply.
  CommandResult status = RunCommand(Verb("status", {"--databases", "all", "--json"}));
  ASSERT_EQ(status.exit_code, 0) << status.output;
  auto j = nlohmann::json::parse(status.output.substr(status.output.find('{')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << status.output;
  ASSERT_EQ(j["databases"].size(), 3u) << status.output;
  // In byte order of their names, whatever the server's collation.
  EXPECT_EQ(j["databases"][0]["database"], "Shop Data") << status.output;
  EXPECT_EQ(j["databases"][2]["database"], "select") << status.output;
  EXPECT_EQ(j["total"]["databases"], 3) << status.output;
  EXPECT_EQ(j["total"]["lag_known"], true) << status.output;
  CommandResult text = RunCommand(Verb("status", {"--databases", "all"}));
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("Shop Data"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("total"), std::string::npos) << text.output;

  // cleanup: every database's slot and publication on the source, origin on the target, queue.
  CommandResult clean = RunCommand(Verb("cleanup", {"--databases", "all"}));
  ASSERT_EQ(clean.exit_code, 0) << clean.output;
  auto left = src_->Query("SELECT count(*) FROM pg_replication_slots");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, "0");
  for (const std::string& db : kDatabases) {
    auto pubs = src_->Query("SELECT count(*) FROM pg_publication", db);
    ASSERT_TRUE(pubs.ok());
    EXPECT_EQ(*pubs, "0") << db;
    auto origins = dst_->Query("SELECT count(*) FROM pg_replication_origin", db);
    ASSERT_TRUE(origins.ok());
    EXPECT_EQ(*origins, "0") << db;
  }
  EXPECT_FALSE(std::filesystem::exists(qdir_.path())) << clean.output;
}

TEST_P(ClusterTest, MigrateCarriesTheRolesThenEveryDatabaseKilledAndResumedEndsIdentical) {
  // The target has none of the databases: migrate carries the roles and creates the databases
  // (owners, settings) before it copies them.
  for (const std::string& db : kDatabases) {
    ASSERT_TRUE(dst_->Exec("DROP DATABASE " + Quoted(db)).ok());
  }
  ASSERT_TRUE(src_->Exec("CREATE ROLE \"Team Owner\" LOGIN PASSWORD 'pw'").ok());
  ASSERT_TRUE(src_->Exec("ALTER ROLE \"Team Owner\" SET statement_timeout = '5s'").ok());
  ASSERT_TRUE(src_->Exec("ALTER DATABASE app OWNER TO \"Team Owner\"").ok());
  ASSERT_TRUE(src_->Exec("ALTER DATABASE \"Shop Data\" SET work_mem = '8MB'").ok());
  ASSERT_TRUE(src_->Exec("ALTER TABLE hist OWNER TO \"Team Owner\"", "app").ok());
  // Large objects in two databases, copied with the data.
  ASSERT_TRUE(src_->Exec("SELECT lo_from_bytea(0, 'app object')", "app").ok());
  ASSERT_TRUE(src_->Exec("SELECT lo_from_bytea(0, 'shop object')", "Shop Data").ok());
  BackgroundWriter app(src_->Conninfo("app"), 3, NextWrite);
  BackgroundWriter shop(src_->Conninfo("Shop Data"), 5, NextWrite);

  // Killed at random points: in the globals step, a preflight, a copy, or while following.
  std::mt19937 rng(5);
  for (int round = 0; round < 3; ++round) {
    ProcessOptions po;
    po.stdout_path = qdir_.path() + fmt::format(".migrate{}.log", round);
    ChildProcess migrate(Verb("migrate", {"--databases", "all", "--jobs", "2"}), po);
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 3500));
    migrate.Signal(SIGKILL);
    migrate.Wait(10000);
  }
  CommandResult until =
      RunCommand(Verb("migrate", {"--databases", "all", "--jobs", "2", "--until", "caught-up"}));
  ASSERT_EQ(until.exit_code, 0) << until.output;
  for (const std::string& db : kDatabases) {
    EXPECT_NE(until.output.find("database \"" + db + "\": caught up"), std::string::npos)
        << db << "\n"
        << until.output;
  }

  // The cluster's `run` serves one metrics endpoint, every series labelled with its database,
  // scraped by a real Prometheus while the writers write.
  const int port = FreePort();
  ProcessOptions po;
  po.stdout_path = qdir_.path() + ".metrics-run.log";
  ChildProcess served(
      Verb("run", {"--databases", "all", "--metrics-addr", fmt::format("127.0.0.1:{}", port)}), po);
  PrometheusOptions popt;
  popt.targets = {fmt::format("127.0.0.1:{}", port)};
  auto prom = PrometheusServer::Start(popt);
  ASSERT_TRUE(prom.ok()) << prom.status().ToString();
  for (const std::string query :
       {"pgbaton_transactions_total{database=\"Shop Data\",stage=\"applied\"}",
        "pgbaton_transactions_total{database=\"app\",stage=\"applied\"}",
        "pgbaton_applied_lsn{database=\"select\"}", "pgbaton_source_lsn{database=\"app\"}"}) {
    auto got = (*prom)->WaitForValue(
        query, [](double v) { return v > 0; }, 60000);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->has_value()) << query << "\n" << (*prom)->LogTail();
  }
  served.Signal(SIGTERM);
  EXPECT_EQ(served.Wait(30000), 0);

  ASSERT_NO_FATAL_FAILURE(StopWritersAndRunToTheEnd(app, shop));
  auto owner = dst_->Query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'");
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, "Team Owner");
  auto table_owner =
      dst_->Query("SELECT tableowner FROM pg_tables WHERE tablename = 'hist'", "app");
  ASSERT_TRUE(table_owner.ok());
  EXPECT_EQ(*table_owner, "Team Owner");
  auto role_setting = dst_->Query(
      "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON "
      "r.oid = s.setrole WHERE r.rolname = 'Team Owner' AND s.setdatabase = 0");
  ASSERT_TRUE(role_setting.ok());
  EXPECT_EQ(*role_setting, "statement_timeout=5s");
  auto db_setting = dst_->Query(
      "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON "
      "d.oid = s.setdatabase WHERE d.datname = 'Shop Data' AND s.setrole = 0");
  ASSERT_TRUE(db_setting.ok());
  EXPECT_EQ(*db_setting, "work_mem=8MB");

  // Large objects, per database: the copied ones match; one written since differs (logical
  // decoding does not carry it) until --sync-large-objects brings it over.
  CommandResult lo = RunCommand(Verify({"--large-objects"}));
  EXPECT_EQ(lo.exit_code, 0) << lo.output;
  ASSERT_TRUE(src_->Exec("SELECT lo_from_bytea(0, 'late object')", "Shop Data").ok());
  lo = RunCommand(Verify({"--large-objects"}));
  EXPECT_EQ(lo.exit_code, 81) << lo.output;
  EXPECT_NE(lo.output.find("database \"Shop Data\": large object"), std::string::npos) << lo.output;
  lo = RunCommand(Verify({"--sync-large-objects"}));
  EXPECT_EQ(lo.exit_code, 0) << lo.output;
  lo = RunCommand(Verify({"--large-objects"}));
  EXPECT_EQ(lo.exit_code, 0) << lo.output;

  // Globals are not in the WAL: status says whether they are still level since the sync.
  auto globals = [&]() {
    CommandResult st = RunCommand(Verb("status", {"--databases", "all", "--json"}));
    EXPECT_EQ(st.exit_code, 0) << st.output;
    auto j = nlohmann::json::parse(st.output.substr(st.output.find('{')), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << st.output;
    return j.is_discarded() ? nlohmann::json() : j["globals"];
  };
  nlohmann::json level = globals();
  EXPECT_EQ(level["synced"], true) << level.dump();
  EXPECT_EQ(level["level"], true) << level.dump();
  ASSERT_TRUE(src_->Exec("CREATE ROLE late_role LOGIN").ok());
  nlohmann::json drift = globals();
  EXPECT_EQ(drift["level"], false) << drift.dump();
  EXPECT_NE(drift["changes"].dump().find("create role \\\"late_role\\\""), std::string::npos)
      << drift.dump();
}

TEST_P(ClusterTest, BadSelectionsAreClearErrorsAndChangeNothing) {
  auto nothing_created = [&](const std::string& what) {
    auto slots = src_->Query("SELECT count(*) FROM pg_replication_slots");
    ASSERT_TRUE(slots.ok());
    EXPECT_EQ(*slots, "0") << what;
    auto tables = dst_->Query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "app");
    ASSERT_TRUE(tables.ok());
    EXPECT_EQ(*tables, "0") << what;
  };
  // A database the source does not have.
  CommandResult r = RunCommand(Verb("copy", {"--databases", "app,nope"}));
  EXPECT_EQ(r.exit_code, 80) << r.output;
  EXPECT_NE(r.output.find("database \"nope\""), std::string::npos) << r.output;
  nothing_created("unknown database");
  // Named and excluded at once.
  r = RunCommand(Verb("copy", {"--databases", "app,Shop Data", "--exclude-database", "Shop*"}));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("excluded by --exclude-database \"Shop*\""), std::string::npos)
      << r.output;
  nothing_created("named and excluded");
  // A target without the database, when the globals are left to the operator.
  ASSERT_TRUE(dst_->Exec("DROP DATABASE \"select\"").ok());
  r = RunCommand(Verb("copy", {"--databases", "all", "--no-globals"}));
  EXPECT_EQ(r.exit_code, 80) << r.output;
  EXPECT_NE(r.output.find("the target has no database \"select\""), std::string::npos) << r.output;
  nothing_created("target without the database");
  // The globals flags belong to a cluster migration.
  r = RunCommand(Verb("migrate", {"--hold-logins", "team_*"}));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("belong to a cluster migration (--databases)"), std::string::npos)
      << r.output;
  nothing_created("globals flags without --databases");
  // `run` before any copy.
  r = RunCommand(Verb("run", {"--databases", "app"}));
  EXPECT_EQ(r.exit_code, 80) << r.output;
  EXPECT_NE(r.output.find("copy it first"), std::string::npos) << r.output;

  // A database dropped on the source mid-migration stops `run` with the database named.
  r = RunCommand(Verb("copy", {"--databases", "all", "--exclude-database", "select"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(
      src_->Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE "
                 "database = 'Shop Data'")
          .ok());
  ASSERT_TRUE(src_->Exec("DROP DATABASE \"Shop Data\"").ok());
  r = RunCommand(Verb("run", {"--databases", "all", "--exclude-database", "select"}));
  EXPECT_EQ(r.exit_code, 80) << r.output;
  EXPECT_NE(r.output.find("database \"Shop Data\" of this cluster migration no longer exists"),
            std::string::npos)
      << r.output;
  // The operator leaves it out: the rest goes on.
  r = RunCommand(StopAtNow(Verb("run", {"--databases", "all", "--exclude-database", "select",
                                        "--exclude-database", "Shop Data"}),
                           *src_));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(TablesDigest(*src_, "app", kTables), TablesDigest(*dst_, "app", kTables));
}

INSTANTIATE_TEST_SUITE_P(Majors, ClusterTest, ::testing::Values(Pair{15, 17}, Pair{13, 18}),
                         [](const auto& info) {
                           return fmt::format("From{}To{}", info.param.source, info.param.target);
                         });

}  // namespace
}  // namespace pgbaton::testing
