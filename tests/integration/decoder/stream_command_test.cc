// `pgbaton stream` against real servers (13, 15, 17, 18) into the real RocksDB queue: a pgbench
// run arrives exactly (every committed transaction, in commit order, nothing rolled back),
// survives kill -9 without loss or duplicates, a ~200 MB transaction streams in bounded memory,
// and a dropped slot / publication or wal_level = replica stop with their error codes. On 16+
// the slot's restart point follows the decoder within seconds (running-transactions records on
// request).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "queue/work_queue.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

using namespace std::chrono_literals;

struct QueuedTxn {
  queue::CommitRecord commit;
  std::vector<std::pair<std::string, queue::Change>> changes;  // relation name, change
};

// Every committed transaction in the queue at `dir`, with relation names resolved.
std::vector<QueuedTxn> ReadQueue(const std::string& dir) {
  queue::QueueOptions o;
  o.dir = dir;
  auto q = queue::WorkQueue::Open(o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return {};
  std::map<std::pair<uint32_t, uint32_t>, std::string> names;
  auto rels = (*q)->ListRelations();
  EXPECT_TRUE(rels.ok());
  for (const auto& r : *rels) names[{r.id.value, r.version}] = r.name;
  std::vector<QueuedTxn> out;
  auto cur = (*q)->ReadFrom(Lsn());
  EXPECT_TRUE(cur.ok()) << cur.status().ToString();
  for (;;) {
    auto tr = (*cur)->Next(0ms);
    EXPECT_TRUE(tr.ok()) << tr.status().ToString();
    if (!tr.ok() || *tr == nullptr) break;
    QueuedTxn t{(*tr)->commit(), {}};
    queue::ChangeChunk chunk;
    for (;;) {
      auto more = (*tr)->NextChunk(&chunk);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      for (auto& c : chunk.changes) {
        t.changes.emplace_back(names[{c.relation.value, c.relation_version}], std::move(c));
      }
    }
    EXPECT_EQ(t.changes.size(), t.commit.change_count);
    out.push_back(std::move(t));
  }
  return out;
}

class StreamTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    // 12 has no logical_decoding_work_mem: it spills a transaction past 4096 changes.
    PgServerOptions o;
    if (GetParam() >= 13) o.settings = {{"logical_decoding_work_mem", "1MB"}};
    server_ = StartServer(GetParam(), o);
    ASSERT_TRUE(server_);
    queue_dir_ = MakeTempDir("pgbaton-decoder-q");
    log_ = queue_dir_ + ".log";
  }
  void TearDown() override {
    stream_ = ChildProcess();
    if (!queue_dir_.empty()) RemoveTree(queue_dir_);
    std::remove(log_.c_str());
  }

  // Starts `pgbaton stream` without waiting for anything (for starts that must fail).
  void LaunchStream(const std::vector<std::string>& extra = {}) {
    ProcessOptions po;
    po.stdout_path = log_;  // appended to across restarts
    std::vector<std::string> argv = {PgbatonBinary(),     "stream",      "--source",
                                     server_->Conninfo(), "--queue-dir", queue_dir_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    stream_ = ChildProcess(argv, po);
  }
  void StartStream(const std::vector<std::string>& extra = {}) {
    LaunchStream(extra);
    // Wait until it streams (the slot exists and is active), so no change is made before it.
    // Not streaming within 30 s, or exited, is a failure (callers wrap this in
    // ASSERT_NO_FATAL_FAILURE so that the test stops there).
    for (int i = 0; i < 300; ++i) {
      auto active = server_->Query(
          "select count(*) from pg_replication_slots where slot_name = 'pgbaton' and active");
      if (active.ok() && *active == "1") return;
      ASSERT_TRUE(stream_.running()) << "pgbaton stream exited before streaming (exit code "
                                     << stream_.exit_code() << "): " << ReadFile(log_);
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "pgbaton stream did not stream (slot \"pgbaton\" active) within 30 s: "
           << ReadFile(log_);
  }
  int StopStream() {
    stream_.Signal(SIGTERM);
    return stream_.Wait(30000);
  }
  // Commits a marker transaction and waits until the slot has confirmed it, i.e. until the
  // queue holds it and everything before it.
  void WaitForMarker() {
    ASSERT_TRUE(server_->Exec("CREATE TABLE IF NOT EXISTS marker (id serial PRIMARY KEY)").ok());
    auto before = server_->Query("select pg_current_wal_lsn()");
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(server_->Exec("INSERT INTO marker DEFAULT VALUES").ok());
    for (int i = 0; i < 600; ++i) {
      auto ok =
          server_->Query("select coalesce(confirmed_flush_lsn > '" + *before +
                         "'::pg_lsn, false) from pg_replication_slots where slot_name = 'pgbaton'");
      if (ok.ok() && *ok == "t") return;
      ASSERT_TRUE(stream_.running()) << "pgbaton stream exited: " << ReadFile(log_);
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "the marker was not confirmed in 60 s: " << ReadFile(log_);
  }
  CommandResult Pgbench(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        "pgbench", "-h", "127.0.0.1", "-p", std::to_string(server_->port()), "-U", "postgres"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("postgres");
    return RunCommand(argv);
  }
  // The pgbench_history rows as "aid tid bid delta mtime", sorted.
  std::vector<std::string> HistoryOnServer() {
    auto c = server_->Connect();
    EXPECT_TRUE(c.ok());
    auto r = c->Exec("select aid, tid, bid, delta, mtime from pgbench_history");
    EXPECT_TRUE(r.ok());
    std::vector<std::string> out;
    for (int i = 0; i < r->rows(); ++i) {
      out.push_back(fmt::format("{} {} {} {} {}", r->Get(i, 0), r->Get(i, 1), r->Get(i, 2),
                                r->Get(i, 3), r->Get(i, 4)));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  static std::vector<std::string> HistoryInQueue(const std::vector<QueuedTxn>& txns) {
    std::vector<std::string> out;
    for (const auto& t : txns) {
      for (const auto& [rel, c] : t.changes) {
        if (rel != "pgbench_history" || c.kind != queue::ChangeKind::kInsert) continue;
        const auto& v = *c.new_tuple;  // tid, bid, aid, delta, mtime, filler
        out.push_back(
            fmt::format("{} {} {} {} {}", v[2].data, v[0].data, v[1].data, v[3].data, v[4].data));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<PgServer> server_;
  std::string queue_dir_, log_;
  ChildProcess stream_;
};

TEST_P(StreamTest, PgbenchArrivesExactlyOnceInCommitOrder) {
  ASSERT_NO_FATAL_FAILURE(StartStream());
  auto init = Pgbench({"-i", "-s", "1", "-q"});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  auto run = Pgbench({"-T", "3", "-c", "2", "-j", "2"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  ASSERT_TRUE(server_
                  ->Exec("BEGIN; INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                         "VALUES (1, 1, -42, 0, now()); ROLLBACK")
                  .ok());
  WaitForMarker();
  ASSERT_EQ(StopStream(), 0) << ReadFile(log_);

  auto txns = ReadQueue(queue_dir_);
  ASSERT_FALSE(txns.empty());
  auto server_rows = HistoryOnServer();
  auto queue_rows = HistoryInQueue(txns);
  ASSERT_GT(server_rows.size(), 10u);
  EXPECT_EQ(queue_rows, server_rows);  // every committed insert once; the -42 one is absent
  size_t accounts = 0, bench_txns = 0;
  for (size_t i = 0; i < txns.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(txns[i - 1].commit.commit_lsn, txns[i].commit.commit_lsn);
    }
    bool history = false;
    for (const auto& [rel, c] : txns[i].changes) {
      accounts += rel == "pgbench_accounts" && c.kind == queue::ChangeKind::kInsert;
      history |= rel == "pgbench_history";
    }
    if (history) {
      ++bench_txns;
      // pgbench's TPC-B-like transaction: three updates and one insert, in that order.
      ASSERT_EQ(txns[i].changes.size(), 4u);
      EXPECT_EQ(txns[i].changes[0].first, "pgbench_accounts");
      EXPECT_EQ(txns[i].changes[2].first, "pgbench_branches");
      EXPECT_EQ(txns[i].changes[3].second.kind, queue::ChangeKind::kInsert);
    }
  }
  EXPECT_EQ(accounts, 100000u);  // pgbench -i -s 1
  // Built-in type names come from the source's pg_type over a normal connection.
  {
    queue::QueueOptions o;
    o.dir = queue_dir_;
    auto q = queue::WorkQueue::Open(o);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    auto rels = (*q)->ListRelations();
    ASSERT_TRUE(rels.ok());
    std::vector<std::string> types;
    for (const auto& r : *rels) {
      if (r.name != "pgbench_accounts" || r.version != 1) continue;
      EXPECT_EQ(r.schema, "public");
      for (const auto& c : r.columns)
        types.push_back(c.name + " " + c.type.schema + "|" + c.type.name);
    }
    EXPECT_EQ(types,
              (std::vector<std::string>{"aid pg_catalog|int4", "bid pg_catalog|int4",
                                        "abalance pg_catalog|int4", "filler pg_catalog|bpchar"}));
  }
  EXPECT_EQ(bench_txns, server_rows.size());
}

TEST_P(StreamTest, KillNineMidRunLosesAndDoublesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartStream());
  auto init = Pgbench({"-i", "-s", "1", "-q"});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ChildProcess bench({"pgbench", "-h", "127.0.0.1", "-p", std::to_string(server_->port()), "-U",
                      "postgres", "-T", "5", "-c", "2", "-j", "2", "postgres"},
                     {});
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(1500ms);
    ASSERT_TRUE(stream_.running()) << ReadFile(log_);
    // Mid-stream: pgbench is still writing when the decoder dies (it runs 5 s; the kills come
    // at about 1.5 s and 3 s plus the restart).
    ASSERT_TRUE(bench.running()) << "round " << round << ": pgbench had ended before the kill";
    stream_.Kill();  // SIGKILL: no chance to flush anything
    ASSERT_NO_FATAL_FAILURE(StartStream());
  }
  ASSERT_EQ(bench.Wait(60000), 0);
  WaitForMarker();
  ASSERT_EQ(StopStream(), 0) << ReadFile(log_);

  auto txns = ReadQueue(queue_dir_);
  auto server_rows = HistoryOnServer();
  ASSERT_GT(server_rows.size(), 10u);
  EXPECT_EQ(HistoryInQueue(txns), server_rows);
  std::map<uint32_t, int> xids;
  for (const auto& t : txns) EXPECT_EQ(++xids[t.commit.xid.value], 1) << "xid twice";
}

// What the slot keeps on the source follows the decoder within seconds on 16+: its restart point
// passes a position taken under writes long before the 15 s after which the server would log a
// running-transactions record by itself. Before 16 the source cannot be asked, and the log says so.
TEST_P(StreamTest, OnSixteenAndLaterTheSlotKeepsAboutASecondOfWal) {
  ASSERT_TRUE(server_->Exec("CREATE TABLE w (id serial PRIMARY KEY, v text)").ok());
  ASSERT_NO_FATAL_FAILURE(StartStream());
  BackgroundWriter writer(server_->Conninfo(), 1, [](std::mt19937&, int n) {
    return fmt::format("INSERT INTO w (v) VALUES ('{}')", n);
  });
  std::this_thread::sleep_for(500ms);
  auto mark = server_->Query("SELECT pg_current_wal_lsn()::text");
  ASSERT_TRUE(mark.ok());
  const auto start = std::chrono::steady_clock::now();
  bool passed = false;
  while (!passed && std::chrono::steady_clock::now() - start < 5s) {
    auto r = server_->Query("SELECT coalesce(restart_lsn >= '" + *mark +
                            "'::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = "
                            "'pgbaton'");
    passed = r.ok() && *r == "t";
    if (!passed) std::this_thread::sleep_for(100ms);
  }
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  ASSERT_EQ(StopStream(), 0) << ReadFile(log_);
  if (GetParam() >= 16) {
    EXPECT_TRUE(passed) << "the slot's restart point did not pass " << *mark << " within 5 s\n"
                        << ReadFile(log_);
  } else {
    EXPECT_NE(ReadFile(log_).find("a source before 16"), std::string::npos) << ReadFile(log_);
  }
}

INSTANTIATE_TEST_SUITE_P(Majors, StreamTest, ::testing::Values(12, 13, 15, 17, 18),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

class StreamSingleTest : public StreamTest {};
class BigTransactionTest : public StreamTest {};

// Peak RSS of a process (VmHWM), in kB.
long PeakRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_P(BigTransactionTest, TwoHundredMegabyteTransactionInBoundedMemory) {
  ASSERT_TRUE(server_->Exec("CREATE TABLE big (id int PRIMARY KEY, payload text)").ok());
  ASSERT_NO_FATAL_FAILURE(StartStream());
  // ~200 MB of row data in one transaction (100,000 rows of 2,000 bytes).
  ASSERT_TRUE(server_
                  ->Exec("INSERT INTO big SELECT i, repeat(md5(i::text), 62) || "
                         "lpad(i::text, 16, '0') FROM generate_series(1, 100000) i")
                  .ok());
  WaitForMarker();
  long peak_kb = PeakRssKb(stream_.pid());
  ASSERT_EQ(StopStream(), 0) << ReadFile(log_);
  EXPECT_GT(peak_kb, 0);
  EXPECT_LT(peak_kb, 100 * 1024) << "pgbaton stream held the transaction in memory";
  std::fprintf(stderr, "peak RSS of pgbaton stream: %ld kB\n", peak_kb);

  auto txns = ReadQueue(queue_dir_);
  size_t rows = 0, bytes = 0, chunks = 0;
  for (const auto& t : txns) {
    for (const auto& [rel, c] : t.changes) {
      if (rel != "big") continue;
      ++rows;
      bytes += (*c.new_tuple)[1].data.size();
    }
    if (t.commit.change_count == 100000) chunks = t.commit.chunk_count;
  }
  EXPECT_EQ(rows, 100000u);
  EXPECT_EQ(bytes, 100000u * 2000u);
  EXPECT_GT(chunks, 100u);  // about 1 MiB each
}

TEST_P(StreamSingleTest, DroppedSlotAndPublicationStopWithTheirCodes) {
  ASSERT_NO_FATAL_FAILURE(StartStream());
  ASSERT_TRUE(server_->Exec("CREATE TABLE t (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(server_->Exec("INSERT INTO t VALUES (1)").ok());
  WaitForMarker();
  // The publication dropped under a running stream: the server refuses to go on.
  ASSERT_TRUE(server_->Exec("DROP PUBLICATION pgbaton").ok());
  ASSERT_TRUE(server_->Exec("INSERT INTO t VALUES (2)").ok());
  int rc = stream_.Wait(30000);
  EXPECT_EQ(rc, 21) << ReadFile(log_);
  EXPECT_NE(ReadFile(log_).find("publication"), std::string::npos) << ReadFile(log_);

  // The slot dropped while the queue holds data: never silently re-created.
  ASSERT_TRUE(server_->Exec("SELECT pg_drop_replication_slot('pgbaton')").ok());
  std::remove(log_.c_str());
  LaunchStream();  // must refuse: no waiting for a slot that will not come back
  EXPECT_EQ(stream_.Wait(30000), 20);
  std::string out = ReadFile(log_);
  EXPECT_NE(out.find(fmt::format("error: slot \"pgbaton\" on source (127.0.0.1:{}/postgres) "
                                 "does not exist",
                                 server_->port())),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("hint: "), std::string::npos) << out;
}

// 13 sends the transaction whole at its commit; 15 streams it while in progress.
INSTANTIATE_TEST_SUITE_P(Majors, BigTransactionTest, ::testing::Values(12, 13, 15),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

TEST_P(StreamSingleTest, PublicationTablesFilterWhatIsStreamed) {
  ASSERT_TRUE(server_
                  ->Exec("CREATE SCHEMA s; CREATE TABLE s.a (id int PRIMARY KEY); "
                         "CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE marker (id serial "
                         "PRIMARY KEY)")
                  .ok());
  ASSERT_NO_FATAL_FAILURE(StartStream({"--publication-tables", "s.a,marker"}));
  ASSERT_TRUE(server_->Exec("INSERT INTO s.a VALUES (1); INSERT INTO b VALUES (1)").ok());
  ASSERT_TRUE(server_->Exec("INSERT INTO b VALUES (2)").ok());
  WaitForMarker();
  ASSERT_EQ(StopStream(), 0) << ReadFile(log_);
  std::vector<std::string> tables;
  for (const auto& t : ReadQueue(queue_dir_)) {
    for (const auto& [rel, c] : t.changes) tables.push_back(rel);
  }
  EXPECT_EQ(tables, (std::vector<std::string>{"a", "marker"}));
  auto pub = server_->Query(
      "select string_agg(schemaname || '.' || tablename, ',' order by tablename) "
      "from pg_publication_tables where pubname = 'pgbaton'");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, "s.a,public.marker");
}

INSTANTIATE_TEST_SUITE_P(Pg15, StreamSingleTest, ::testing::Values(15),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

TEST(StreamConfigTest, WalLevelReplicaIsAServerConfigError) {
  auto s = StartServer(15, {.settings = {{"wal_level", "replica"}}});
  ASSERT_TRUE(s);
  std::string dir = MakeTempDir("pgbaton-decoder-q");
  auto r = RunCommand({PgbatonBinary(), "stream", "--source", s->Conninfo(), "--queue-dir", dir});
  RemoveTree(dir);
  EXPECT_EQ(r.exit_code, 13) << r.output;
  EXPECT_NE(r.output.find("wal_level = replica"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hint: set wal_level = logical"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pgbaton::testing
