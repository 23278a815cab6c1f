#include "tests/integration/decoder/capture_workload.h"

#include <fmt/format.h>

#include <vector>

#include "decoder/pgoutput_parser.h"
#include "decoder/replication.h"
#include "tests/support/capture_file.h"

namespace pgbaton::testing {
namespace {

using decoder::PgOutputParser;
using decoder::ReplicationConnection;

constexpr const char* kSchema = R"sql(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE types_t (
  id int PRIMARY KEY, n numeric(20,5), j jsonb, ia int[], ta text[], b bytea, m mood, ma mood[],
  d posint, ts timestamp, tstz timestamptz, iv interval, u uuid, ip inet, t text, f8 float8,
  bo bool, dt date, big bigint);
CREATE TABLE full_t (id int, v text);
ALTER TABLE full_t REPLICA IDENTITY FULL;
CREATE TABLE parent_t (id int PRIMARY KEY);
CREATE TABLE child_t (id serial PRIMARY KEY, pid int REFERENCES parent_t);
CREATE TABLE big_t (id int PRIMARY KEY, payload text);
CREATE TABLE capture_end (id int PRIMARY KEY);
CREATE PUBLICATION golden FOR ALL TABLES;
)sql";

// Each entry is one transaction (or a statement that is one).
const std::vector<std::string>& Workload() {
  static const std::vector<std::string> w = {
      // 1. every type, text in several scripts
      "INSERT INTO types_t VALUES (1, 12345.67891, '{\"a\": [1, 2, {\"b\": null}], \"c\": \"ü\"}', "
      "'{1,2,3}', '{\"x y\",NULL,z}', '\\xdeadbeef', 'happy', '{sad,ok}', 42, "
      "'2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+02', '1 year 2 mons 3 days 04:05:06.5', "
      "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', "
      "'héllo wörld | Привет мир | こんにちは世界 | مرحبا بالعالم | 🐘', 3.5e-7, true, "
      "'2024-02-29', 9223372036854775807)",
      // 2. nulls
      "INSERT INTO types_t (id) VALUES (2)",
      // 3. bytea over the TOAST size (32000 bytes of md5 output: incompressible, deterministic)
      "INSERT INTO types_t (id, b, t) SELECT 3, string_agg(decode(md5(i::text), 'hex'), ''::bytea "
      "ORDER BY i), 'toasted' FROM generate_series(1, 2000) i",
      // 4. update leaving the TOASTed value unchanged ('u')
      "UPDATE types_t SET t = 'updated' WHERE id = 3",
      // 5. key change: old key ('K')
      "UPDATE types_t SET id = 4 WHERE id = 2",
      // 6. replica identity full: old row ('O')
      "INSERT INTO full_t VALUES (1, 'one'), (2, 'two')",
      "UPDATE full_t SET v = 'uno' WHERE id = 1",
      "DELETE FROM full_t WHERE id = 2",
      // 7. delete by key
      "DELETE FROM types_t WHERE id = 1",
      // 8. truncate: cascade, restart identity
      "INSERT INTO parent_t VALUES (1); INSERT INTO child_t (pid) VALUES (1)",
      "TRUNCATE parent_t CASCADE",
      "TRUNCATE full_t RESTART IDENTITY",
      // 9. logical decoding messages
      "BEGIN; INSERT INTO parent_t VALUES (2); "
      "SELECT pg_logical_emit_message(true, 'pgb', 'transactional message'); COMMIT",
      "SELECT pg_logical_emit_message(false, 'pgb', 'non-transactional message')",
      // 10. a rolled-back transaction: nothing is sent
      "BEGIN; INSERT INTO parent_t VALUES (99); ROLLBACK",
      // 11. a large transaction streamed in progress, with a subtransaction rolled back
      "BEGIN; INSERT INTO big_t SELECT i, repeat('x', 100) FROM generate_series(1, 600) i; "
      "SAVEPOINT s1; INSERT INTO big_t SELECT i, repeat('y', 100) FROM generate_series(601, 1200) "
      "i; "
      "ROLLBACK TO SAVEPOINT s1; INSERT INTO big_t VALUES (5000, 'after'); COMMIT",
      // 12. a large transaction streamed and then aborted whole
      "BEGIN; INSERT INTO big_t SELECT i, repeat('z', 100) FROM generate_series(10001, 10600) i; "
      "ROLLBACK",
      // 13. two-phase: committed, rolled back, and a large one (stream prepare)
      "BEGIN; INSERT INTO parent_t VALUES (10); PREPARE TRANSACTION 'g1'",
      "COMMIT PREPARED 'g1'",
      "BEGIN; INSERT INTO parent_t VALUES (11); PREPARE TRANSACTION 'g2'",
      "ROLLBACK PREPARED 'g2'",
      "BEGIN; INSERT INTO big_t SELECT i, repeat('p', 100) FROM generate_series(20001, 20600) i; "
      "PREPARE TRANSACTION 'g3'",
      "COMMIT PREPARED 'g3'",
      // 15. DDL: a new relation version
      "ALTER TABLE parent_t ADD COLUMN note text",
      "INSERT INTO parent_t VALUES (12, 'with note')",
  };
  return w;
}

Result<std::string> Record(ReplicationConnection* rc, bool* done) {
  std::string out(decoder::kCaptureMagic);
  PgOutputParser parser;
  uint32_t end_rel = 0;
  bool end_seen = false;
  *done = false;
  for (int idle = 0; idle < 300;) {
    PGB_ASSIGN_OR_RETURN(auto msg, rc->Receive(std::chrono::milliseconds(100)));
    if (!msg.has_value()) {
      ++idle;
      continue;
    }
    if ((*msg)[0] == 'k') {
      PGB_ASSIGN_OR_RETURN(auto k, decoder::ParseKeepalive(*msg));
      if (k.reply_requested) PGB_RETURN_IF_ERROR(rc->SendStatus(k.wal_end, Lsn(), Lsn()));
      continue;
    }
    PGB_ASSIGN_OR_RETURN(auto x, decoder::ParseXLogData(*msg));
    decoder::AppendCaptured(&out, x.wal_start, x.payload);
    if (x.payload.empty()) continue;  // PostgreSQL 13 sends some empty XLogData messages
    PGB_ASSIGN_OR_RETURN(auto m, parser.Parse(x.payload));
    if (auto* r = std::get_if<decoder::RelationMsg>(&m); r && r->name == "capture_end") {
      end_rel = r->id.value;
    } else if (auto* i = std::get_if<decoder::InsertMsg>(&m); i && i->relation.value == end_rel) {
      end_seen = true;
    } else if (std::holds_alternative<decoder::CommitMsg>(m) && end_seen) {
      *done = true;
      return out;
    }
  }
  return Status::Error(ErrorCode::kTimeout, "capture: the end marker never arrived");
}

}  // namespace

PgServerOptions GoldenServerOptions(int major) {
  PgServerOptions o;
  o.major = major;
  o.settings = {{"max_prepared_transactions", "10"}, {"logical_decoding_work_mem", "64kB"}};
  return o;
}

Result<GoldenCapture> CaptureGoldenWorkload(PgServer& server) {
  PGB_RETURN_IF_ERROR(server.Exec(kSchema));
  std::string conninfo = server.Conninfo();
  int major = server.major();
  PGB_ASSIGN_OR_RETURN(auto rc, ReplicationConnection::Connect(conninfo));
  PGB_RETURN_IF_ERROR(rc->CreateSlot("golden", false).status());
  std::unique_ptr<ReplicationConnection> rc2;
  if (major >= 15) {
    PGB_ASSIGN_OR_RETURN(rc2, ReplicationConnection::Connect(conninfo));
    PGB_RETURN_IF_ERROR(rc2->CreateSlot("golden2pc", false, /*two_phase=*/true).status());
  }
  // The workload, then a transaction with a replication origin (filtered on 16+ by origin
  // 'none'), then the end marker.
  for (const auto& sql : Workload()) PGB_RETURN_IF_ERROR(server.Exec(sql));
  PGB_RETURN_IF_ERROR(server.Exec(
      "SELECT pg_replication_origin_create('elsewhere'); "
      "SELECT pg_replication_origin_session_setup('elsewhere'); "
      "BEGIN; SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2024-01-01 00:00:00+00'); "
      "INSERT INTO parent_t VALUES (20, 'from elsewhere'); COMMIT; "
      "SELECT pg_replication_origin_session_reset()"));
  PGB_RETURN_IF_ERROR(server.Exec("INSERT INTO capture_end VALUES (1)"));

  GoldenCapture out;
  bool done = false;
  PGB_RETURN_IF_ERROR(
      rc->StartReplication("golden", Lsn(), decoder::DefaultPgOutputOptions(major, "golden")));
  PGB_ASSIGN_OR_RETURN(out.stream, Record(rc.get(), &done));
  if (rc2) {
    auto o = decoder::DefaultPgOutputOptions(major, "golden");
    o.two_phase = true;
    PGB_RETURN_IF_ERROR(rc2->StartReplication("golden2pc", Lsn(), o));
    PGB_ASSIGN_OR_RETURN(out.twophase, Record(rc2.get(), &done));
  }
  return out;
}

}  // namespace pgbaton::testing
