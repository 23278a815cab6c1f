#include "decoder/stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <thread>

#include "catalog/source_catalog.h"
#include "common/log.h"
#include "common/metrics_catalog.h"
#include "common/sql_ident.h"
#include "decoder/assembler.h"
#include "decoder/pgoutput_parser.h"

namespace pgbaton::decoder {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class PgSource : public ReplicationSource {
 public:
  PgSource(std::unique_ptr<ReplicationConnection> c, std::string conninfo, std::string publication)
      : conn_(std::move(c)), conninfo_(std::move(conninfo)), publication_(std::move(publication)) {}
  Result<std::optional<std::string_view>> Receive(milliseconds wait) override {
    return conn_->Receive(wait);
  }
  Status SendStatus(Lsn write, Lsn flush, bool reply) override {
    return conn_->SendStatus(write, flush, flush, reply);
  }
  Status CheckPublication(const std::vector<RelationId>& streamed) override {
    if (streamed.empty()) return Status::Ok();
    // A normal connection: the replication one is busy streaming.
    if (!check_conn_.has_value()) {
      ConnectOptions co;
      co.label = "source";
      co.application_name = "pgbaton publication check";
      auto c = PgConn::Connect(conninfo_, co);
      if (!c.ok()) {
        LogDebug("publication check: cannot connect", {{"error", c.status().message()}});
        return Status::Ok();
      }
      check_conn_.emplace(std::move(*c));
    }
    std::string oids = "{";
    for (size_t i = 0; i < streamed.size(); ++i) {
      oids += (i ? "," : "") + std::to_string(streamed[i].value);
    }
    oids += "}";
    // Tables that still exist (a dropped table is DDL, not a publication change) but are no
    // longer listed. By OID, so that a renamed table is not taken for a removed one.
    auto res = check_conn_->ExecParams(
        "select n.nspname || '.' || c.relname from pg_catalog.pg_class c join "
        "pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = any($1::oid[]) and "
        "not exists (select 1 from pg_catalog.pg_publication_tables p where p.pubname = $2 and "
        "p.schemaname = n.nspname and p.tablename = c.relname) order by 1",
        {oids, publication_});
    if (!res.ok()) {
      LogDebug("publication check failed", {{"error", res.status().message()}});
      check_conn_.reset();
      return Status::Ok();
    }
    if (res->rows() == 0) return Status::Ok();
    std::string names;
    for (int r = 0; r < res->rows(); ++r) {
      names += fmt::format("{}\"{}\"", r ? ", " : "", res->GetString(r, 0));
    }
    std::string first = res->GetString(0, 0);
    return Status::Error(
        ErrorCode::kPublicationMissing,
        fmt::format("publication \"{}\" on {} no longer includes relation{} {}: changes to {} "
                    "are no longer streamed",
                    publication_, conn_->Describe(), res->rows() > 1 ? "s" : "", names,
                    res->rows() > 1 ? "them" : "it"),
        fmt::format("the table was removed from the publication while pgbaton streamed it, and "
                    "its changes since then are lost to pgbaton: add it back (ALTER PUBLICATION "
                    "{} ADD TABLE {}) and run again, then bring that table on the target back in "
                    "line with the source before cutover (or start over with pgbaton copy)",
                    QuoteIdent(publication_), first));
  }

 private:
  std::unique_ptr<ReplicationConnection> conn_;
  std::string conninfo_;
  std::string publication_;
  std::optional<PgConn> check_conn_;
};

// One session: from connecting to the first error or the stop flag.
const metrics::Catalog& SeriesOf(const StreamOptions& o) {
  return o.metrics != nullptr ? *o.metrics : metrics::CatalogMetrics();
}

class Session {
 public:
  Session(queue::WorkQueue* q, Assembler* a, const StreamOptions& o, StreamStats* st,
          const std::atomic<bool>* stop)
      : queue_(q),
        asm_(a),
        opt_(o),
        stats_(st),
        stop_(stop),
        // Children looked up once: WithLabels takes a lock, the increment does not.
        decoded_bytes_(SeriesOf(o).bytes_total.WithLabels({metrics::kStageDecoded})),
        decoded_txns_(SeriesOf(o).transactions_total.WithLabels({metrics::kStageDecoded})),
        queued_bytes_(SeriesOf(o).bytes_total.WithLabels({metrics::kStageQueued})),
        queued_txns_(SeriesOf(o).transactions_total.WithLabels({metrics::kStageQueued})) {}

  // Returns OK when stopped; `*progressed` says whether any message arrived.
  Status Run(ReplicationSource* src, bool* progressed) {
    src_ = src;
    auto last_status = Clock::now();
    auto last_idle_confirm = Clock::now();
    std::optional<Clock::time_point> last_check;
    for (;;) {
      if (stop_->load()) {
        PGB_RETURN_IF_ERROR(Flush());
        return SendStatus(false);
      }
      auto now = Clock::now();
      if (opt_.publication_check_interval.count() > 0 &&
          (!last_check || now - *last_check >= opt_.publication_check_interval)) {
        last_check = now;
        PGB_RETURN_IF_ERROR(CheckPublication());
      }
      milliseconds wait{100};
      // With committed transactions waiting, the read waits only until the oldest has waited
      // idle_flush_delay: if the server has sent nothing more by then, the stream is idle and
      // the batch is appended at once instead of a batch delay later. Under a steady flow there
      // is always more, and batches still grow up to batch_max_delay.
      const bool waiting = pending_since_.has_value() && !asm_->batch().commits.empty();
      const milliseconds deadline = waiting && opt_.idle_flush_delay < opt_.batch_max_delay
                                        ? opt_.idle_flush_delay
                                        : opt_.batch_max_delay;
      if (pending_since_.has_value()) {
        wait = std::min(wait,
                        std::chrono::duration_cast<milliseconds>(*pending_since_ + deadline - now));
      }
      wait = std::max(wait, milliseconds{0});
      PGB_ASSIGN_OR_RETURN(std::optional<std::string_view> msg, src_->Receive(wait));
      const bool idle = !msg.has_value() || msg->empty();
      if (!idle) {
        *progressed = true;
        PGB_RETURN_IF_ERROR(Handle(*msg));
      }
      now = Clock::now();
      const auto& b = asm_->batch();
      const bool due = !b.commits.empty() && pending_since_.has_value() &&
                       now - *pending_since_ >= (idle ? deadline : opt_.batch_max_delay);
      if (asm_->batch_bytes() >= opt_.batch_max_bytes ||
          b.commits.size() >= opt_.batch_max_commits || due) {
        Lsn before = stats_->confirmed;
        PGB_RETURN_IF_ERROR(Flush());
        if (stats_->confirmed != before) {
          PGB_RETURN_IF_ERROR(SendStatus(false));
          last_status = now;
        }
      }
      if (idle && opt_.idle_confirm_interval.count() > 0 &&
          now - last_idle_confirm >= opt_.idle_confirm_interval) {
        last_idle_confirm = now;
        bool sent = false;
        PGB_RETURN_IF_ERROR(ConfirmIdle(&sent));
        if (sent) last_status = now;
      }
      if (now - last_status >= opt_.status_interval) {
        PGB_RETURN_IF_ERROR(SendStatus(false));
        last_status = now;
      }
    }
  }

 private:
  Status Handle(std::string_view msg) {
    if (msg[0] == 'k') {
      PGB_ASSIGN_OR_RETURN(Keepalive k, ParseKeepalive(msg));
      received_ = std::max(received_, k.wal_end);
      // Reply at once with what the queue holds; never more.
      if (k.reply_requested) return SendStatus(false);
      return Status::Ok();
    }
    if (msg[0] != 'w') {
      return Status::Error(ErrorCode::kProtocol,
                           fmt::format("replication: unexpected message type 0x{:02x} after LSN {}",
                                       static_cast<uint8_t>(msg[0]), received_.ToString()));
    }
    PGB_ASSIGN_OR_RETURN(XLogData x, ParseXLogData(msg));
    received_ = std::max(received_, x.wal_end);
    // PostgreSQL 13 sends an empty XLogData for changes it filtered out: nothing to decode.
    if (x.payload.empty()) return Status::Ok();
    auto parsed = parser_.Parse(x.payload);
    if (!parsed.ok()) {
      return Status::Error(
          ErrorCode::kProtocol,
          fmt::format("{} at LSN {}", parsed.status().message(), x.wal_start.ToString()),
          "the server sent a message pgbaton cannot read: report it with the "
          "server version; nothing past the last queued transaction was "
          "confirmed");
    }
    ++stats_->messages;
    size_t commits_before = asm_->batch().commits.size();
    PGB_RETURN_IF_ERROR(asm_->Add(std::move(*parsed), x.wal_start));
    decoded_bytes_->Increment(x.payload.size());
    if (asm_->batch().commits.size() > commits_before) {
      decoded_txns_->Increment(asm_->batch().commits.size() - commits_before);
    }
    if (asm_->batch().commits.size() > commits_before && !pending_since_.has_value()) {
      pending_since_ = Clock::now();
    }
    return Status::Ok();
  }

  Status Flush() {
    if (asm_->batch().empty()) return Status::Ok();
    Lsn end = asm_->batch_end_lsn();
    size_t commits = asm_->batch().commits.size();
    size_t bytes = asm_->batch_bytes();
    PGB_RETURN_IF_ERROR(queue_->AppendOwned(asm_->TakeBatch()));
    queued_txns_->Increment(commits);
    queued_bytes_->Increment(bytes);
    pending_since_.reset();
    ++stats_->appends;
    stats_->transactions += commits;
    if (end.IsValid()) stats_->confirmed = std::max(stats_->confirmed, end);
    return Status::Ok();
  }

  // With nothing decoded waiting for the queue and no transaction open, every transaction that
  // ends before what the server has sent is in the queue: the server sent it, or it was of
  // another database or of no published table. Confirming that position lets the slot (and the
  // WAL it holds) move on while the source writes only elsewhere. The position is recorded in
  // the queue first, so that the slot is never past everything the queue knows of
  // (tools/common/identity.cc checks that on every start).
  Status ConfirmIdle(bool* sent) {
    if (!asm_->batch().empty() || asm_->in_transaction() || asm_->open_streamed() > 0) {
      return Status::Ok();
    }
    if (!received_.IsValid() || received_ <= stats_->confirmed) return Status::Ok();
    PGB_RETURN_IF_ERROR(
        queue_->PutMeta(queue::WorkQueue::kReceivedThroughKey, received_.ToString()));
    stats_->confirmed = received_;
    *sent = true;
    return SendStatus(false);
  }

  // Asks the source about every relation the queue holds a descriptor of. What the queue and
  // the batch hold is flushed first, so that stopping here loses nothing that was decoded.
  Status CheckPublication() {
    PGB_ASSIGN_OR_RETURN(auto relations, queue_->ListRelations());
    std::set<RelationId> ids;
    for (const auto& r : relations) ids.insert(r.id);
    Status s = src_->CheckPublication({ids.begin(), ids.end()});
    if (!s.ok()) {
      PGB_RETURN_IF_ERROR(Flush());
      PGB_RETURN_IF_ERROR(SendStatus(false));
    }
    return s;
  }

  Status SendStatus(bool reply) {
    Lsn flush = stats_->confirmed;
    return src_->SendStatus(std::max(received_, flush), flush, reply);
  }

  queue::WorkQueue* queue_;
  Assembler* asm_;
  const StreamOptions& opt_;
  StreamStats* stats_;
  const std::atomic<bool>* stop_;
  ReplicationSource* src_ = nullptr;
  PgOutputParser parser_;
  Lsn received_;
  std::optional<Clock::time_point> pending_since_;
  metrics::Counter* const decoded_bytes_;
  metrics::Counter* const decoded_txns_;
  metrics::Counter* const queued_bytes_;
  metrics::Counter* const queued_txns_;
};

}  // namespace

SourceFactory PgSourceFactory(std::string conninfo, std::string slot, std::string publication) {
  return [conninfo = std::move(conninfo), slot = std::move(slot),
          publication =
              std::move(publication)](Lsn start) -> Result<std::unique_ptr<ReplicationSource>> {
    PGB_ASSIGN_OR_RETURN(auto conn, ReplicationConnection::Connect(conninfo, "source"));
    PGB_ASSIGN_OR_RETURN(bool slot_exists, conn->SlotExists(slot));
    if (!slot_exists) {
      return Status::Error(
          ErrorCode::kSlotMissing,
          fmt::format("slot \"{}\" on {} does not exist", slot, conn->Describe()),
          "the slot was dropped or never created: changes made since it went missing are lost; "
          "drop the queue and the target data and start the migration again with `pgbaton copy`");
    }
    PGB_ASSIGN_OR_RETURN(bool pub_exists, catalog::PublicationExists(conn->conn(), publication));
    if (!pub_exists) {
      return Status::Error(
          ErrorCode::kPublicationMissing,
          fmt::format("publication \"{}\" on {} does not exist", publication, conn->Describe()),
          "create it again with the same name (CREATE PUBLICATION ... FOR ALL TABLES) or run "
          "`pgbaton stream`, which creates it when missing");
    }
    PGB_RETURN_IF_ERROR(conn->StartReplication(
        slot, start, DefaultPgOutputOptions(conn->server_major(), publication)));
    LogInfo("streaming",
            {{"slot", slot}, {"source", conn->Describe()}, {"from", start.ToString()}});
    return std::unique_ptr<ReplicationSource>(new PgSource(std::move(conn), conninfo, publication));
  };
}

Status RunStream(queue::WorkQueue* queue, TypeResolver* types, const SourceFactory& factory,
                 const StreamOptions& options, const std::atomic<bool>* stop, StreamStats* stats) {
  StreamStats local;
  if (stats == nullptr) stats = &local;
  PGB_RETURN_IF_ERROR(queue->DiscardUncommitted());
  PGB_ASSIGN_OR_RETURN(Lsn last_commit, queue->LastCommitLsn());
  PGB_ASSIGN_OR_RETURN(Lsn last_end, queue->LastEndLsn());
  PGB_ASSIGN_OR_RETURN(auto relations, queue->ListRelations());
  stats->confirmed = last_end;
  Assembler assembler(types, {.chunk_bytes = options.chunk_bytes, .skip_through = last_commit},
                      relations);

  auto backoff = options.initial_backoff;
  int failures = 0;
  bool first = true;
  while (!stop->load()) {
    if (!first) {
      // The source resends every transaction the queue does not hold: drop partial ones.
      PGB_RETURN_IF_ERROR(queue->DiscardUncommitted());
      PGB_ASSIGN_OR_RETURN(last_commit, queue->LastCommitLsn());
      PGB_ASSIGN_OR_RETURN(auto known, queue->ListRelations());
      assembler.Reset(last_commit, known);
    }
    first = false;
    bool progressed = false;
    Status s;
    auto src = factory(stats->confirmed);
    if (src.ok()) {
      Session session(queue, &assembler, options, stats, stop);
      s = session.Run(src->get(), &progressed);
    } else {
      s = src.status();
    }
    stats->skipped = assembler.skipped();
    if (s.ok()) return s;  // stopped
    if (!s.retryable()) return s;
    if (progressed) {
      failures = 0;
      backoff = options.initial_backoff;
    }
    ++failures;
    if (options.max_consecutive_failures > 0 && failures >= options.max_consecutive_failures) {
      return s.WithHint(fmt::format("gave up after {} attempts; {}", failures, s.hint()));
    }
    LogWarning("replication interrupted; reconnecting",
               {{"error", s.message()}, {"in_ms", backoff.count()}});
    ++stats->reconnects;
    SeriesOf(options).errors_total.WithLabels({ErrorCodeName(s.code())})->Increment();
    auto until = Clock::now() + backoff;
    while (Clock::now() < until && !stop->load()) {
      std::this_thread::sleep_for(milliseconds{20});
    }
    backoff = std::min(options.max_backoff, backoff * 2);
  }
  return Status::Ok();
}

}  // namespace pgbaton::decoder
