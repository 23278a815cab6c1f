#include "tools/migrate/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "common/pg.h"
#include "common/sql_ident.h"
#include "tools/initial_copy/catalog.h"
#include "tools/initial_copy/data_copy.h"

namespace pgbaton::tools::migrate {
namespace {

using Clock = std::chrono::steady_clock;
using copy::Chunk;
using copy::TableInfo;

Result<PgConn> Connect(const std::string& conninfo, const char* label) {
  ConnectOptions co;
  co.label = label;
  co.application_name = "pgbaton plan";
  return PgConn::Connect(conninfo, co);
}

// A session that only reads, at a snapshot of its own.
Result<PgConn> ReadOnlySession(const std::string& conninfo) {
  PGB_ASSIGN_OR_RETURN(PgConn conn, Connect(conninfo, "source"));
  PGB_RETURN_IF_ERROR(conn.Run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
  return conn;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string HumanBytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string HumanSeconds(double s) {
  if (s < 10) return fmt::format("{:.1f} s", s);
  if (s < 90) return fmt::format("{:.0f} s", s);
  if (s < 5400) return fmt::format("{:.0f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

// One piece of the read sample: a range of a table, read with the copy's own statement. Its
// chunk's estimated_bytes is the heap it covers (exact for a TID range or a whole table; a key
// range assumes evenly spread keys, as the copy's progress does).
struct Piece {
  const TableInfo* table = nullptr;
  Chunk chunk;
};

// The sample's pieces: the first `max_bytes` of the biggest tables. On 14 and later, TID ranges
// of `piece_bytes` cut by the copy's PlanChunks, so a piece cut short by the clock loses little;
// before 14 (no TID range scans) the copy's own chunks, whose heap bytes a cut piece estimates
// from its rows.
Result<std::vector<Piece>> SamplePieces(PgConn& conn, const std::vector<TableInfo>& tables,
                                        const copy::CopyOptions& co, uint64_t piece_bytes,
                                        uint64_t max_bytes, std::vector<TableInfo>* storage) {
  storage->clear();
  std::vector<bool> clamped;
  uint64_t left = max_bytes;
  for (const TableInfo& t : tables) {
    if (left == 0) break;
    if (t.bytes == 0) continue;
    storage->push_back(t);
    clamped.push_back(false);
    if (conn.ServerMajor() >= 14 && t.bytes > left) {
      storage->back().bytes = left;
      clamped.back() = true;
    }
    left -= std::min(left, t.bytes);
  }
  const bool tid = conn.ServerMajor() >= 14;
  PGB_ASSIGN_OR_RETURN(
      std::vector<Chunk> chunks,
      copy::PlanChunks(conn, *storage, tid ? piece_bytes : copy::ChunkBytesFor(co, tables)));
  std::vector<Piece> out;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    // A clamped table's last TID range is open-ended: it would read the rest of the table.
    const bool last_of_table = i + 1 == chunks.size() || chunks[i + 1].table != c.table;
    if (clamped[c.table] && last_of_table) continue;
    out.push_back({&(*storage)[c.table], c});
  }
  return out;
}

struct SampleResult {
  ReadSample sample;
  double window_seconds = 0;
  bool estimated_rows = false;    // a cut piece counted by rows x (bytes / reltuples)
  bool copy_bytes_proxy = false;  // a cut piece counted by COPY bytes (no reltuples)
  Status error;
};

// Reads `pieces` with `sessions` sessions for `seconds`, as the copy's workers would take them
// (in order, each session the next piece), discarding the bytes. `bytes_per_row` maps a table's
// oid to its heap bytes per row (pg_class.reltuples), for a piece the clock cuts.
SampleResult ReadSampleOf(const PlanOptions& o, const std::vector<Piece>& pieces, int sessions,
                          const std::map<uint32_t, double>& bytes_per_row) {
  SampleResult out;
  std::vector<PgConn> conns;
  for (int i = 0; i < sessions; ++i) {
    auto c = ReadOnlySession(o.copy.source);
    if (!c.ok()) {
      out.error = c.status();
      return out;
    }
    conns.push_back(std::move(*c));
  }
  out.sample.sessions.resize(conns.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(o.sample_seconds));
  auto worker = [&](size_t id) {
    PgConn& conn = conns[id];
    SessionSample& s = out.sample.sessions[id];
    while (Clock::now() < deadline) {
      const size_t k = next.fetch_add(1);
      if (k >= pieces.size()) break;
      const Piece& p = pieces[k];
      const auto t0 = Clock::now();
      const std::string sql =
          copy::CopyOutSql(*p.table, p.chunk, copy::CopiesInBinary(o.copy, *p.table));
      PgResult r(PQexec(conn.raw(), sql.c_str()));
      if (PQresultStatus(r.raw()) != PGRES_COPY_OUT) {
        std::lock_guard<std::mutex> l(mu);
        if (out.error.ok()) {
          out.error = conn.ErrorFrom(r.raw(), fmt::format("sampling table \"{}\"", p.table->Key()));
        }
        return;
      }
      uint64_t rows = 0, bytes = 0;
      bool cut = false;
      for (;;) {
        char* buf = nullptr;
        const int n = PQgetCopyData(conn.raw(), &buf, 0);
        if (n > 0) {
          PQfreemem(buf);
          ++rows;
          bytes += static_cast<uint64_t>(n);
          // The clock is read every 256 rows: cheap next to a row, and close enough.
          if ((rows & 255) == 0 && Clock::now() >= deadline) {
            cut = true;
            break;
          }
          continue;
        }
        if (n == -2) {
          std::lock_guard<std::mutex> l(mu);
          if (out.error.ok()) {
            out.error =
                conn.ErrorFrom(nullptr, fmt::format("sampling table \"{}\"", p.table->Key()));
          }
          return;
        }
        break;
      }
      const double took = Seconds(Clock::now() - t0);
      if (!cut) {
        while (PGresult* extra = PQgetResult(conn.raw())) PQclear(extra);
        s.heap_bytes += p.chunk.estimated_bytes;
        s.copy_bytes += bytes;
        s.seconds += took;
        continue;
      }
      // Cut by the clock: the session ends here (its COPY is abandoned with the connection).
      // The part it read counts by its rows when the table's row count is known; otherwise,
      // only when nothing else was measured, by COPY bytes as if they were heap bytes.
      auto bpr = bytes_per_row.find(p.table->oid);
      std::lock_guard<std::mutex> l(mu);
      if (bpr != bytes_per_row.end()) {
        s.heap_bytes += static_cast<uint64_t>(static_cast<double>(rows) * bpr->second);
        s.copy_bytes += bytes;
        s.seconds += took;
        out.estimated_rows = true;
      } else if (s.seconds == 0) {
        s.heap_bytes += bytes;
        s.copy_bytes += bytes;
        s.seconds += took;
        out.copy_bytes_proxy = true;
      }
      break;
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < conns.size(); ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  out.window_seconds = Seconds(Clock::now() - start);
  return out;
}

// Heap bytes per row of each table the sample may read, where the server has counted its rows.
Result<std::map<uint32_t, double>> BytesPerRow(PgConn& conn, const std::vector<TableInfo>& tables) {
  std::map<uint32_t, double> out;
  if (tables.empty()) return out;
  std::string oids;
  for (const auto& t : tables) oids += (oids.empty() ? "" : ",") + std::to_string(t.oid);
  PGB_ASSIGN_OR_RETURN(
      PgResult r, conn.Exec(fmt::format("SELECT c.oid, c.reltuples::float8 FROM pg_class c "
                                        "WHERE c.oid = ANY('{{{}}}'::oid[]) AND c.reltuples > 0",
                                        oids)));
  std::map<uint32_t, uint64_t> bytes;
  for (const auto& t : tables) bytes[t.oid] = t.bytes;
  for (int i = 0; i < r.rows(); ++i) {
    const auto oid = static_cast<uint32_t>(r.GetInt(i, 0));
    const double tuples = std::stod(r.GetString(i, 1));
    if (tuples > 0) out[oid] = static_cast<double>(bytes[oid]) / tuples;
  }
  return out;
}

preflight::Finding PlanFinding(std::string check, preflight::Severity sev, std::string message,
                               std::string fix) {
  preflight::Finding f;
  f.check = std::move(check);
  f.severity = sev;
  f.message = std::move(message);
  f.fix = std::move(fix);
  return f;
}

nlohmann::json FindingJson(const preflight::Finding& f) {
  nlohmann::json j = {{"check", f.check}, {"message", f.message}};
  if (!f.fix.empty()) j["fix"] = f.fix;
  if (!f.object.empty()) j["object"] = f.object;
  return j;
}

nlohmann::json SideJson(const SideConnections& s) {
  return {{"sessions", s.sessions}, {"replication", s.replication}};
}

}  // namespace

Result<Plan> MakePlan(const PlanOptions& o) {
  Plan plan;
  plan.queue_dir = o.queue_dir;
  plan.jobs = std::max(o.copy.jobs, 1);
  plan.apply_jobs = std::max(o.apply_jobs, 1);
  plan.queue_bytes_per_wal_byte = o.queue_bytes_per_wal_byte;

  // Preflight, exactly as migrate runs it on a fresh queue.
  preflight::PreflightOptions po;
  po.source = o.copy.source;
  po.target = o.copy.target;
  po.name = o.copy.name;
  po.no_owner = o.copy.no_owner;
  plan.preflight = preflight::RunPreflight(po);
  if (!plan.preflight.connection_error.ok()) return plan.preflight.connection_error;
  for (const preflight::Finding& f : plan.preflight.findings) {
    if (f.severity == preflight::Severity::kError) plan.blockers.push_back(f);
    if (f.severity == preflight::Severity::kWarning) plan.warnings.push_back(f);
  }
  std::error_code ec;
  if (std::filesystem::exists(o.queue_dir, ec) && !std::filesystem::is_empty(o.queue_dir, ec)) {
    plan.warnings.push_back(PlanFinding(
        "plan.queue_dir", preflight::Severity::kWarning,
        fmt::format("queue directory \"{}\" is not empty: migrate would resume what it holds "
                    "(without preflight, copying only the tables not done yet); this plan is "
                    "for a fresh start",
                    o.queue_dir),
        "for a new migration, pass an empty or new --queue-dir"));
  }

  // The tables, as the copy lists and splits them (inside a snapshot of the plan's own).
  PGB_ASSIGN_OR_RETURN(PgConn src, ReadOnlySession(o.copy.source));
  copy::TableFilter filter(o.copy.include, o.copy.exclude);
  PGB_ASSIGN_OR_RETURN(copy::TableList list, copy::ListTables(src, filter));
  plan.excluded_tables = list.excluded.size();
  if (filter.filtering() && list.selected.empty()) {
    plan.blockers.push_back(PlanFinding(
        "plan.tables", preflight::Severity::kError,
        fmt::format("no table on source ({}) matches --include/--exclude", src.description()),
        "patterns are globs on schema.table, e.g. 'public.*' or 'sales.order_*'"));
  }
  plan.chunk_bytes = copy::ChunkBytesFor(o.copy, list.selected);
  PGB_ASSIGN_OR_RETURN(std::vector<Chunk> chunks,
                       copy::PlanChunks(src, list.selected, plan.chunk_bytes));
  plan.chunks = chunks.size();
  plan.data_workers = copy::DataWorkers(o.copy, chunks.size());
  for (const TableInfo& t : list.selected) {
    PlannedTable pt;
    pt.schema = t.schema;
    pt.name = t.name;
    pt.bytes = t.bytes;
    pt.chunks = 0;
    pt.binary = copy::CopiesInBinary(o.copy, t);
    if (!pt.binary) pt.text_reason = o.copy.text ? "--text" : t.text_reason;
    plan.tables.push_back(std::move(pt));
    plan.table_bytes += t.bytes;
  }
  for (const Chunk& c : chunks) ++plan.tables[c.table].chunks;
  using BytesPerRowMap = std::map<uint32_t, double>;
  PGB_ASSIGN_OR_RETURN(BytesPerRowMap bytes_per_row, BytesPerRow(src, list.selected));

  // The WAL rate first, then the read sample: reading freshly written pages sets hint bits, which
  // writes WAL on a cluster with data checksums, and that is not the application's rate.
  const auto wal_start = Clock::now();
  PGB_ASSIGN_OR_RETURN(std::string lsn1, src.QueryValue("SELECT pg_current_wal_lsn()::text"));
  std::this_thread::sleep_for(std::chrono::duration<double>(o.sample_seconds));
  PGB_ASSIGN_OR_RETURN(std::string lsn2, src.QueryValue("SELECT pg_current_wal_lsn()::text"));
  plan.wal_window_seconds = Seconds(Clock::now() - wal_start);
  PGB_ASSIGN_OR_RETURN(plan.wal_from, Lsn::Parse(lsn1));
  PGB_ASSIGN_OR_RETURN(plan.wal_to, Lsn::Parse(lsn2));
  plan.wal_bytes_per_second =
      plan.wal_window_seconds > 0
          ? static_cast<double>(plan.wal_to.BytesSince(plan.wal_from)) / plan.wal_window_seconds
          : 0;

  std::vector<TableInfo> sampled_tables;
  PGB_ASSIGN_OR_RETURN(std::vector<Piece> pieces,
                       SamplePieces(src, list.selected, o.copy, o.sample_piece_bytes,
                                    o.sample_max_bytes, &sampled_tables));
  src = PgConn();  // the sessions below read on their own
  // As many sessions as the copy runs workers, at most one per piece.
  const int sessions = static_cast<int>(std::min<size_t>(plan.data_workers, pieces.size()));
  if (sessions > 0) {
    SampleResult s = ReadSampleOf(o, pieces, sessions, bytes_per_row);
    if (!s.error.ok()) {
      plan.blockers.push_back(PlanFinding(
          "plan.sample", preflight::Severity::kError,
          fmt::format("the copy's read of the source failed while sampling: {}", s.error.message()),
          s.error.hint().empty() ? "the copy would fail the same way: fix it on the source"
                                 : s.error.hint()));
    }
    plan.sample = std::move(s.sample);
    plan.sample_window_seconds = s.window_seconds;
    if (s.copy_bytes_proxy) {
      plan.sample_note =
          "a table without a row count (never analyzed) was counted by its COPY "
          "bytes: run ANALYZE on the source for a closer estimate";
    } else if (s.estimated_rows) {
      plan.sample_note = "pieces cut by the clock were counted by their rows (pg_class.reltuples)";
    }
  }
  plan.copy = EstimateCopy(plan.table_bytes, plan.sample);
  plan.queue_bytes =
      EstimateQueueBytes(plan.wal_bytes_per_second, plan.copy.seconds, o.queue_bytes_per_wal_byte);
  plan.connections = CountConnections(plan.jobs, plan.data_workers, plan.apply_jobs);
  return plan;
}

nlohmann::json PlanJson(const Plan& p) {
  nlohmann::json j;
  j["schema_version"] = 1;
  j["ready"] = p.ready();
  auto server = [](const preflight::ServerInfo& s) {
    return nlohmann::json{{"description", s.description}, {"version", s.version}};
  };
  j["source"] = server(p.preflight.source);
  j["target"] = server(p.preflight.target);
  j["queue_dir"] = p.queue_dir;
  j["jobs"] = p.jobs;
  j["apply_jobs"] = p.apply_jobs;
  nlohmann::json tables = nlohmann::json::array();
  for (const PlannedTable& t : p.tables) {
    nlohmann::json o = {{"schema", t.schema},    {"name", t.name},
                        {"bytes", t.bytes},      {"chunks", t.chunks},
                        {"split", t.chunks > 1}, {"format", t.binary ? "binary" : "text"}};
    if (!t.text_reason.empty()) o["text_reason"] = t.text_reason;
    tables.push_back(std::move(o));
  }
  j["tables"] = std::move(tables);
  j["excluded_tables"] = p.excluded_tables;
  j["copy"] = {{"bytes", p.table_bytes},
               {"chunk_bytes", p.chunk_bytes},
               {"chunks", p.chunks},
               {"workers", p.data_workers},
               {"measured", p.copy.measured},
               {"read_bytes_per_second", p.copy.read_bytes_per_second},
               {"end_to_end_over_read", kEndToEndOverRead},
               {"bytes_per_second", p.copy.copy_bytes_per_second},
               {"data_seconds", p.copy.data_seconds},
               {"fixed_seconds", kFixedCopySeconds},
               {"seconds", p.copy.seconds}};
  j["sample"] = {{"sessions", p.sample.sessions.size()},
                 {"seconds", p.sample_window_seconds},
                 {"heap_bytes", p.sample.HeapBytes()},
                 {"copy_bytes", p.sample.CopyBytes()}};
  if (!p.sample_note.empty()) j["sample"]["note"] = p.sample_note;
  j["wal"] = {{"from_lsn", p.wal_from.ToString()},
              {"to_lsn", p.wal_to.ToString()},
              {"seconds", p.wal_window_seconds},
              {"bytes_per_second", p.wal_bytes_per_second}};
  j["queue"] = {{"bytes_per_wal_byte", p.queue_bytes_per_wal_byte}, {"bytes", p.queue_bytes}};
  nlohmann::json phases = nlohmann::json::array();
  for (const PhaseConnections& ph : p.connections.phases) {
    phases.push_back(
        {{"phase", ph.phase}, {"source", SideJson(ph.source)}, {"target", SideJson(ph.target)}});
  }
  j["connections"] = {{"source", SideJson(p.connections.source_peak)},
                      {"target", SideJson(p.connections.target_peak)},
                      {"replication_slots", 1},
                      {"phases", std::move(phases)}};
  nlohmann::json blockers = nlohmann::json::array(), warnings = nlohmann::json::array();
  for (const auto& f : p.blockers) blockers.push_back(FindingJson(f));
  for (const auto& f : p.warnings) warnings.push_back(FindingJson(f));
  j["blockers"] = std::move(blockers);
  j["warnings"] = std::move(warnings);
  return j;
}

std::string PlanText(const Plan& p) {
  std::string out = "pgbaton migrate --plan (read-only: nothing was created)\n";
  out += fmt::format("  source: {} (PostgreSQL {})\n", p.preflight.source.description,
                     p.preflight.source.version);
  out += fmt::format("  target: {} (PostgreSQL {})\n", p.preflight.target.description,
                     p.preflight.target.version);
  out += fmt::format("  queue:  {}\n\n", p.queue_dir);

  size_t split = 0;
  for (const auto& t : p.tables) split += t.chunks > 1 ? 1 : 0;
  out += fmt::format("tables: {} ({}), biggest first; {} split into ranges of {}", p.tables.size(),
                     HumanBytes(static_cast<double>(p.table_bytes)), split,
                     HumanBytes(static_cast<double>(p.chunk_bytes)));
  if (p.excluded_tables > 0) out += fmt::format("; {} left out by the filters", p.excluded_tables);
  out += "\n";
  const size_t shown = std::min<size_t>(p.tables.size(), 20);
  for (size_t i = 0; i < shown; ++i) {
    const PlannedTable& t = p.tables[i];
    std::string how = t.chunks > 1 ? fmt::format("{} chunks", t.chunks) : "whole";
    std::string fmt_ = t.binary ? "binary" : fmt::format("text ({})", t.text_reason);
    out += fmt::format("  {:>10}  {}  {}, {}\n", HumanBytes(static_cast<double>(t.bytes)),
                       QuoteQualified(t.schema, t.name), how, fmt_);
  }
  if (p.tables.size() > shown) {
    out += fmt::format("  ... and {} smaller tables (--json lists them all)\n",
                       p.tables.size() - shown);
  }

  out += "\ncopy:\n";
  if (p.copy.measured) {
    out += fmt::format(
        "  sample: {} session(s) read {} of the biggest tables in {:.1f} s with the copy's own "
        "COPY TO: {}/s\n",
        p.sample.sessions.size(), HumanBytes(static_cast<double>(p.sample.HeapBytes())),
        p.sample_window_seconds, HumanBytes(p.copy.read_bytes_per_second));
    if (!p.sample_note.empty()) out += fmt::format("          ({})\n", p.sample_note);
    out += fmt::format(
        "  expected: about {} ({} of data at {}/s with {} worker(s), plus {:.1f} s of schema, "
        "indexes and analyze)\n",
        HumanSeconds(p.copy.seconds), HumanBytes(static_cast<double>(p.table_bytes)),
        HumanBytes(p.copy.copy_bytes_per_second), p.data_workers, kFixedCopySeconds);
  } else {
    out += fmt::format("  nothing to read: the tables hold no rows; expected about {}\n",
                       HumanSeconds(p.copy.seconds));
  }

  out += fmt::format(
      "\nqueue: about {} at the end of the copy (the WAL rate, {}/s sampled over {:.1f} s, x "
      "the copy's {} x {:.2f} queue bytes per WAL byte)\n",
      HumanBytes(static_cast<double>(p.queue_bytes)), HumanBytes(p.wal_bytes_per_second),
      p.wal_window_seconds, HumanSeconds(p.copy.seconds), p.queue_bytes_per_wal_byte);

  out += fmt::format(
      "\nconnections at most: source {} session(s) + {} replication connection(s) and 1 slot; "
      "target {} session(s)\n",
      p.connections.source_peak.sessions, p.connections.source_peak.replication,
      p.connections.target_peak.sessions);
  for (const PhaseConnections& ph : p.connections.phases) {
    out += fmt::format("  {:<10} source {:>3} + {} replication   target {:>3}\n", ph.phase,
                       ph.source.sessions, ph.source.replication, ph.target.sessions);
  }

  out += fmt::format("\npreflight: {} blocker(s), {} warning(s)\n", p.blockers.size(),
                     p.warnings.size());
  for (const auto& f : p.blockers) {
    out += fmt::format("  BLOCKER {}\n", f.message);
    if (!f.fix.empty()) out += fmt::format("          fix: {}\n", f.fix);
  }
  for (const auto& f : p.warnings) {
    out += fmt::format("  warning {}\n", f.message);
    if (!f.fix.empty()) out += fmt::format("          fix: {}\n", f.fix);
  }
  out += p.ready() ? "\nresult: ready: `pgbaton migrate` with the same flags can start\n"
                   : "\nresult: not ready: fix each blocker above first\n";
  return out;
}

Status RunPlan(const PlanOptions& options, bool json) {
  PGB_ASSIGN_OR_RETURN(Plan plan, MakePlan(options));
  if (json) {
    fmt::print("{}\n", PlanJson(plan).dump(2));
  } else {
    fmt::print("{}", PlanText(plan));
  }
  std::fflush(stdout);
  if (!plan.ready()) {
    return Status::Error(
        ErrorCode::kPreflightFailed,
        fmt::format("the plan has {} blocker(s); nothing was created", plan.blockers.size()),
        "fix each blocker the plan lists, then plan again");
  }
  return Status::Ok();
}

}  // namespace pgbaton::tools::migrate
