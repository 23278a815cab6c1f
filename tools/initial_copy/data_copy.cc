#include "tools/initial_copy/data_copy.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "common/metrics_catalog.h"
#include "common/sql_ident.h"

namespace pgbaton::tools::copy {
namespace {

// How often one chunk is retried on a new source session when its session ends under it.
constexpr int kSourceRetries = 3;

std::string ColumnList(const TableInfo& t) {
  std::string out;
  for (const auto& col : t.columns) {
    if (!out.empty()) out += ", ";
    out += QuoteIdent(col);
  }
  return out;
}

Status SnapshotLost(const SnapshotRef& snap, const Status& cause) {
  return Status::Error(ErrorCode::kSnapshotLost,
                       fmt::format("snapshot \"{}\" is lost: the source session that exported it "
                                   "ended, so it cannot be imported ({})",
                                   snap.name, cause.message()),
                       "run the same command again: finished tables are kept and the rest are "
                       "copied at a new snapshot");
}

Result<PgConn> OpenSourceOnce(const CopyOptions& o, const SnapshotRef& snap, int worker) {
  ConnectOptions co;
  co.label = "source";
  co.application_name = fmt::format("pgbaton copy {}", worker);
  PGB_ASSIGN_OR_RETURN(PgConn src, PgConn::Connect(o.source, co));
  PGB_RETURN_IF_ERROR(src.Run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
  Status st = src.Run(fmt::format("SET TRANSACTION SNAPSHOT {}", src.QuoteLiteral(snap.name)));
  if (!st.ok()) {
    if (st.code() == ErrorCode::kConnection) return st;
    return SnapshotLost(snap, st);
  }
  return src;
}

// A worker's source session importing the snapshot. A session that ends while it connects or
// imports (terminated, or its connection broke) is opened again, up to kSourceRetries times:
// the snapshot stays importable while the session that exported it lives.
Result<PgConn> OpenSource(const CopyOptions& o, const SnapshotRef& snap, int worker) {
  for (int attempt = 0;; ++attempt) {
    auto src = OpenSourceOnce(o, snap, worker);
    if (src.ok() || src.status().code() != ErrorCode::kConnection || attempt >= kSourceRetries) {
      return src;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
  }
}

// A worker's source session ended mid-copy (`cause`) and the snapshot could not be imported
// again: the session that exported it has ended too.
Status SessionLost(const SnapshotRef& snap, int worker, const Status& cause) {
  return Status::Error(
      ErrorCode::kSnapshotLost,
      fmt::format("snapshot \"{}\" is lost: the source session of copy worker {} that held it "
                  "ended ({}), and the session that exported it has ended too, so it cannot be "
                  "imported again",
                  snap.name, worker, cause.message()),
      "run the same command again: finished tables are kept and the rest are copied at a new "
      "snapshot");
}

Result<PgConn> OpenTarget(const CopyOptions& o, int worker) {
  ConnectOptions co;
  co.label = "target";
  co.application_name = fmt::format("pgbaton copy {}", worker);
  PGB_ASSIGN_OR_RETURN(PgConn dst, PgConn::Connect(o.target, co));
  // Durability comes from a synchronous commit per table before it is recorded as done.
  PGB_RETURN_IF_ERROR(dst.Run("SET synchronous_commit = off"));
  return dst;
}

// Adds `waited` to pgbaton_copy_throttled_seconds_total{reason}, in whole seconds: the
// remainder is carried in `carry_ns` (one per reason, for the process) until it makes a second.
void CountThrottled(const metrics::Catalog& series, const char* reason,
                    std::atomic<int64_t>* carry_ns, std::chrono::nanoseconds waited) {
  if (waited.count() <= 0) return;
  constexpr int64_t kSecond = 1000000000;
  int64_t carry = carry_ns->load();
  int64_t seconds = 0;
  for (;;) {
    const int64_t total = carry + waited.count();
    seconds = total / kSecond;
    if (carry_ns->compare_exchange_weak(carry, total - seconds * kSecond)) break;
  }
  if (seconds > 0) {
    series.copy_throttled_seconds_total.WithLabels({reason})->Increment(
        static_cast<uint64_t>(seconds));
  }
}

std::atomic<int64_t> rate_carry_ns{0};
std::atomic<int64_t> load_carry_ns{0};

// What a worker does after each batch of `bytes` it received from the source: waits while the
// source is loaded, then for the rate's tokens. False when `stop` turned true meanwhile.
bool Throttle(const DataCopyJob& job, uint64_t bytes, const std::atomic<bool>* stop) {
  const metrics::Catalog& series =
      job.metrics != nullptr ? *job.metrics : metrics::CatalogMetrics();
  if (job.load_gate) {
    CountThrottled(series, metrics::kThrottleSourceLoad, &load_carry_ns,
                   job.load_gate->WaitWhileClosed(stop));
  }
  if (stop->load()) return false;
  if (job.rate && bytes > 0) {
    CountThrottled(series, metrics::kThrottleRate, &rate_carry_ns, job.rate->Acquire(bytes));
  }
  return true;
}

// Ends a COPY IN on `dst` with an error so the target rolls it back, and drains its results.
void AbortCopyIn(PgConn& dst, const char* why) {
  PQputCopyEnd(dst.raw(), why);
  while (PGresult* r = PQgetResult(dst.raw())) PQclear(r);
}

// Pipes one chunk from `src` to `dst`. Counts bytes into `p` as they pass, and throttles after
// each batch of them (Throttle). `counted` receives the bytes added to `p` (so a retried chunk can
// take them back). `stop` turning true (another worker failed) ends a throttled wait and the
// chunk.
Status CopyChunk(const DataCopyJob& job, PgConn& src, PgConn& dst, const TableInfo& t,
                 const Chunk& c, bool binary, TableProgress* p, uint64_t* counted,
                 const std::atomic<bool>* stop) {
  std::string src_sql = CopyOutSql(t, c, binary);
  std::string table_dst = QuoteQualified(t.schema, t.name);
  // A whole table is emptied and loaded in one transaction, which lets COPY FREEZE write rows
  // already frozen (no hint-bit rewrite or anti-wraparound vacuum on the target later).
  bool whole = c.where.empty();
  std::string opts;
  if (binary) opts = "FORMAT binary";
  if (whole) opts += opts.empty() ? "FREEZE" : ", FREEZE";
  std::string dst_sql = fmt::format("COPY {} ({}) FROM STDIN{}", table_dst, ColumnList(t),
                                    opts.empty() ? "" : " WITH (" + opts + ")");
  std::string what = fmt::format("copying table \"{}\"{}", t.Key(),
                                 whole ? "" : fmt::format(" range ({})", c.where));

  if (whole) {
    PGB_RETURN_IF_ERROR(dst.Run("BEGIN"));
    PGB_RETURN_IF_ERROR(dst.Run(fmt::format("TRUNCATE ONLY {}", table_dst)));
  }
  PgResult r(PQexec(src.raw(), src_sql.c_str()));
  if (PQresultStatus(r.raw()) != PGRES_COPY_OUT) return src.ErrorFrom(r.raw(), what);
  PgResult w(PQexec(dst.raw(), dst_sql.c_str()));
  if (PQresultStatus(w.raw()) != PGRES_COPY_IN) return dst.ErrorFrom(w.raw(), what);

  uint64_t pending = 0;
  // Bytes received since the last throttle: the batch is small enough that a pause or the rate
  // acts within a fraction of a second, large enough that the bucket's lock is not per row.
  const bool throttled = job.rate != nullptr || job.load_gate != nullptr;
  const uint64_t batch = job.rate ? job.rate->batch_bytes() : (64u << 10);
  uint64_t unthrottled = 0;
  Status failure;
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(src.raw(), &buf, 0);
    if (n > 0) {
      int ok = PQputCopyData(dst.raw(), buf, n);
      PQfreemem(buf);
      if (ok != 1) {
        failure = dst.ErrorFrom(nullptr, what);
        break;
      }
      pending += static_cast<uint64_t>(n);
      if (pending >= (64u << 10)) {
        p->bytes.fetch_add(pending);
        *counted += pending;
        pending = 0;
      }
      unthrottled += static_cast<uint64_t>(n);
      if (throttled && unthrottled >= batch) {
        if (!Throttle(job, unthrottled, stop)) {
          failure = Status::Error(ErrorCode::kInterrupted,
                                  fmt::format("{}: stopped, another copy worker failed", what));
          break;
        }
        unthrottled = 0;
      }
      continue;
    }
    if (n == -2) failure = src.ErrorFrom(nullptr, what);
    break;
  }
  p->bytes.fetch_add(pending);
  *counted += pending;
  if (failure.ok() && throttled && unthrottled > 0) Throttle(job, unthrottled, stop);
  if (failure.ok()) {
    PgResult done(PQgetResult(src.raw()));
    if (PQresultStatus(done.raw()) != PGRES_COMMAND_OK) failure = src.ErrorFrom(done.raw(), what);
    while (PGresult* extra = PQgetResult(src.raw())) PQclear(extra);
  }
  if (!failure.ok()) {
    // (Stopped mid-COPY, the source session is left as it is: the worker ends and closes it.)
    if (dst.connected()) AbortCopyIn(dst, "pgbaton: the source side of the copy failed");
    return failure;
  }
  if (PQputCopyEnd(dst.raw(), nullptr) != 1) return dst.ErrorFrom(nullptr, what);
  PgResult fin(PQgetResult(dst.raw()));
  if (PQresultStatus(fin.raw()) != PGRES_COMMAND_OK) {
    Status st = dst.ErrorFrom(fin.raw(), what);
    while (PGresult* extra = PQgetResult(dst.raw())) PQclear(extra);
    return st;
  }
  p->rows.fetch_add(static_cast<uint64_t>(fin.AffectedRows()));
  while (PGresult* extra = PQgetResult(dst.raw())) PQclear(extra);
  if (whole) PGB_RETURN_IF_ERROR(dst.Run("COMMIT"));
  return Status::Ok();
}

}  // namespace

std::string CopyOutSql(const TableInfo& t, const Chunk& c, bool binary) {
  std::string table_src = QuoteQualified(t.schema, t.name);
  std::string format = binary ? " WITH (FORMAT binary)" : "";
  return c.where.empty() ? fmt::format("COPY {} ({}) TO STDOUT{}", table_src, ColumnList(t), format)
                         : fmt::format("COPY (SELECT {} FROM ONLY {} WHERE {}) TO STDOUT{}",
                                       ColumnList(t), table_src, c.where, format);
}

uint64_t ChunkBytesFor(const CopyOptions& options, const std::vector<TableInfo>& tables) {
  if (options.chunk_bytes != 0) return options.chunk_bytes;
  uint64_t total = 0;
  for (const auto& t : tables) total += t.bytes;
  return std::clamp<uint64_t>(total / (4 * static_cast<uint64_t>(std::max(options.jobs, 1))),
                              16ull << 20, 256ull << 20);
}

int DataWorkers(const CopyOptions& options, size_t chunks) {
  return static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(options.jobs, 1)), chunks));
}

bool CopiesInBinary(const CopyOptions& options, const TableInfo& t) {
  return !options.text && t.binary_safe;
}

Result<std::vector<Chunk>> PlanChunks(PgConn& conn, const std::vector<TableInfo>& tables,
                                      uint64_t chunk_bytes) {
  chunk_bytes = std::max<uint64_t>(chunk_bytes, 8192);
  PGB_ASSIGN_OR_RETURN(std::string bs, conn.QueryValue("SELECT current_setting('block_size')"));
  uint64_t block = std::max<uint64_t>(std::stoull(bs), 1);
  bool tid_ranges = conn.ServerMajor() >= 14;
  std::vector<Chunk> out;
  for (size_t i = 0; i < tables.size(); ++i) {
    const TableInfo& t = tables[i];
    uint64_t n = (t.bytes + chunk_bytes - 1) / chunk_bytes;
    if (n <= 1 || (!tid_ranges && t.int_key.empty())) {
      out.push_back({i, "", t.bytes});
      continue;
    }
    if (tid_ranges) {
      uint64_t pages = (t.bytes + block - 1) / block;
      uint64_t per = std::max<uint64_t>(chunk_bytes / block, 1);
      n = (pages + per - 1) / per;
      for (uint64_t k = 0; k < n; ++k) {
        std::string lo = fmt::format("ctid >= '({},0)'", k * per);
        std::string hi = fmt::format("ctid < '({},0)'", (k + 1) * per);
        // The last range is open-ended: pages added after the size was read hold no row the
        // snapshot sees, but reading them costs nothing and keeps the ranges exhaustive.
        std::string where = k == 0 ? hi : (k + 1 == n ? lo : lo + " AND " + hi);
        out.push_back(
            {i, where, std::min(per * block, t.bytes - std::min(t.bytes, k * per * block))});
      }
      continue;
    }
    std::string key = QuoteIdent(t.int_key);
    PGB_ASSIGN_OR_RETURN(PgResult mm,
                         conn.Exec(fmt::format("SELECT min({0}), max({0}) FROM ONLY {1}", key,
                                               QuoteQualified(t.schema, t.name))));
    if (mm.IsNull(0, 0)) {
      out.push_back({i, "", t.bytes});
      continue;
    }
    __int128 lo = mm.GetInt(0, 0), hi = mm.GetInt(0, 1);
    __int128 step = (hi - lo + 1 + static_cast<__int128>(n) - 1) / static_cast<__int128>(n);
    if (step < 1) step = 1;
    for (uint64_t k = 0; k < n; ++k) {
      __int128 a = lo + step * k, b = lo + step * (k + 1);
      if (a > hi) break;
      std::string ge = fmt::format("{} >= {}", key, static_cast<int64_t>(a));
      std::string lt = fmt::format("{} < {}", key, static_cast<int64_t>(b));
      bool last = k + 1 == n || b > hi;
      std::string where = k == 0 ? (last ? "" : lt) : (last ? ge : ge + " AND " + lt);
      out.push_back({i, where, t.bytes / n});
      if (last) break;
    }
  }
  return out;
}

Status CopyData(const DataCopyJob& job, const std::vector<Chunk>& chunks) {
  if (chunks.empty()) return Status::Ok();
  std::vector<std::atomic<int>> left(job.tables.size());
  for (auto& l : left) l = 0;
  for (const auto& c : chunks) left[c.table].fetch_add(1);

  std::atomic<size_t> next{0};
  std::atomic<int> committed{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards first_error and serializes on_table_done
  Status first_error;
  auto fail = [&](Status st) {
    std::lock_guard<std::mutex> l(mu);
    if (first_error.ok()) first_error = std::move(st);
    failed = true;
  };

  auto worker = [&](int id) {
    auto src = OpenSource(*job.options, job.snapshot, id);
    if (!src.ok()) return fail(src.status());
    // The monitor leaves this copy's own sessions out of the source's active sessions.
    int src_pid = PQbackendPID(src->raw());
    if (job.own_sessions) job.own_sessions->Add(src_pid);
    struct Unregister {
      const DataCopyJob& job;
      const int& pid;
      ~Unregister() {
        if (job.own_sessions) job.own_sessions->Remove(pid);
      }
    } unregister{job, src_pid};
    auto dst = OpenTarget(*job.options, id);
    if (!dst.ok()) return fail(dst.status());
    while (!failed) {
      size_t k = next.fetch_add(1);
      if (k >= chunks.size()) break;
      const Chunk& c = chunks[k];
      TableProgress* p = job.progress[c.table];
      p->chunks_running.fetch_add(1);
      const TableInfo& t = job.tables[c.table];
      Status st;
      for (int attempt = 0;; ++attempt) {
        uint64_t counted = 0;
        st =
            CopyChunk(job, *src, *dst, t, c, CopiesInBinary(*job.options, t), p, &counted, &failed);
        if (st.ok() || src->connected() || !dst->connected() || attempt >= kSourceRetries) break;
        // The source session ended under this chunk (terminated, or its connection broke) and
        // took its imported snapshot with it. The target rolled the chunk back; a new session
        // that imports the same snapshot reads exactly the same rows, so the chunk is retried.
        p->bytes.fetch_sub(counted);
        if (PQtransactionStatus(dst->raw()) != PQTRANS_IDLE) {
          Status rb = dst->Run("ROLLBACK");
          if (!rb.ok()) break;
        }
        auto again = OpenSource(*job.options, job.snapshot, id);
        if (!again.ok()) {
          st = again.status().code() == ErrorCode::kSnapshotLost ? SessionLost(job.snapshot, id, st)
                                                                 : again.status();
          break;
        }
        *src = std::move(*again);
        if (job.own_sessions) {
          job.own_sessions->Remove(src_pid);
          src_pid = PQbackendPID(src->raw());
          job.own_sessions->Add(src_pid);
        }
      }
      p->chunks_running.fetch_sub(1);
      if (!st.ok()) return fail(st);
      int n = committed.fetch_add(1) + 1;
      if (job.on_chunk_done) job.on_chunk_done(n);
      if (left[c.table].fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> l(mu);
        Status done = job.on_table_done ? job.on_table_done(c.table, *dst) : Status::Ok();
        if (!done.ok()) {
          if (first_error.ok()) first_error = done;
          failed = true;
          return;
        }
        p->done = true;
      }
    }
  };

  int n = DataWorkers(*job.options, chunks.size());
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  return first_error;
}

}  // namespace pgbaton::tools::copy
