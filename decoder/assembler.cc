#include "decoder/assembler.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgbaton::decoder {
namespace {

size_t TupleBytes(const queue::Tuple& t) {
  size_t n = 8;
  for (const auto& v : t) n += 8 + v.data.size();
  return n;
}

Status ProtocolError(std::string what, Lsn lsn) {
  return Status::Error(ErrorCode::kProtocol,
                       fmt::format("pgoutput: {} at LSN {}", what, lsn.ToString()),
                       "this is a bug in pgbaton or a server it does not understand: report it "
                       "with the server version");
}

}  // namespace

Assembler::Assembler(TypeResolver* types, AssemblerOptions options,
                     const std::vector<queue::RelationDescriptor>& known)
    : types_(types), options_(options) {
  Remember(known);
}

void Assembler::Remember(const std::vector<queue::RelationDescriptor>& known) {
  relations_.clear();
  for (const auto& d : known) {
    auto it = relations_.find(d.id);
    if (it == relations_.end() || it->second.version < d.version) relations_[d.id] = d;
  }
}

queue::RecordBatch Assembler::TakeBatch() {
  queue::RecordBatch out = std::move(batch_);
  batch_ = {};
  batch_bytes_ = 0;
  batch_end_lsn_ = Lsn();
  return out;
}

void Assembler::Reset(Lsn skip_through, const std::vector<queue::RelationDescriptor>& known) {
  Remember(known);
  current_.reset();
  streamed_.clear();
  stream_block_.reset();
  batch_ = {};
  batch_bytes_ = 0;
  batch_end_lsn_ = Lsn();
  options_.skip_through = std::max(options_.skip_through, skip_through);
  // Commits assembled into the dropped batch are not in the queue: they must be taken again.
  last_commit_lsn_ = options_.skip_through;
}

Status Assembler::OnRelation(const RelationMsg& m, Lsn wal_start) {
  queue::RelationDescriptor d;
  d.id = m.id;
  d.schema = m.schema.empty() ? "pg_catalog" : m.schema;
  d.name = m.name;
  d.identity = static_cast<queue::ReplicaIdentity>(m.identity);
  for (const auto& c : m.columns) {
    queue::Column col;
    col.name = c.name;
    col.type_oid = c.type_oid;
    col.type_modifier = c.type_modifier;
    col.is_key = (c.flags & 1) != 0;
    if (auto it = type_messages_.find(c.type_oid); it != type_messages_.end()) {
      col.type = it->second;
    } else {
      auto name = types_->Resolve(c.type_oid);
      if (!name.ok()) {
        return name.status().WithContext(fmt::format("relation \"{}.{}\" column \"{}\" at LSN {}",
                                                     d.schema, d.name, c.name,
                                                     wal_start.ToString()));
      }
      col.type = *name;
    }
    d.columns.push_back(std::move(col));
  }
  auto it = relations_.find(m.id);
  if (it != relations_.end()) {
    d.version = it->second.version;
    if (it->second == d) return Status::Ok();  // the same description: no new version
  }
  d.version = it == relations_.end() ? 1 : it->second.version + 1;
  relations_[m.id] = d;
  batch_bytes_ += 64 + d.columns.size() * 48;
  batch_.relations.push_back(std::move(d));
  return Status::Ok();
}

Result<uint32_t> Assembler::VersionOf(RelationId id, const char* what, Lsn wal_start) const {
  auto it = relations_.find(id);
  if (it == relations_.end()) {
    return ProtocolError(
        fmt::format("{} for relation OID {} that no relation message described", what, id.value),
        wal_start);
  }
  return it->second.version;
}

Result<Assembler::Txn*> Assembler::TxnFor(std::optional<Xid> stream_xid, const char* what,
                                          Lsn wal_start) {
  if (stream_xid.has_value()) {
    if (!stream_block_.has_value()) {
      return ProtocolError(fmt::format("streamed {} outside a stream block", what), wal_start);
    }
    auto it = streamed_.find(stream_block_->value);
    if (it == streamed_.end()) {
      return ProtocolError(fmt::format("{} for unknown streamed transaction", what), wal_start);
    }
    return &it->second;
  }
  if (!current_.has_value()) {
    return ProtocolError(fmt::format("{} outside a transaction", what), wal_start);
  }
  return &*current_;
}

void Assembler::CloseChunk(Txn* t) {
  if (!t->open.has_value()) return;
  t->per_sub[t->open->subxid.value].second++;
  batch_.chunks.push_back(std::move(*t->open));
  batch_bytes_ += t->open_bytes;
  t->open.reset();
  t->open_bytes = 0;
}

Status Assembler::AddChange(std::optional<Xid> stream_xid, queue::Change change, size_t bytes,
                            Lsn wal_start) {
  PGB_ASSIGN_OR_RETURN(Txn * t, TxnFor(stream_xid, "change", wal_start));
  if (t->skip) return Status::Ok();
  Xid sub = stream_xid.value_or(t->xid);
  if (t->open.has_value() && t->open->subxid != sub) CloseChunk(t);
  if (!t->open.has_value()) {
    t->open.emplace();
    t->open->xid = t->xid;
    t->open->subxid = sub;
    t->open->seq = t->next_seq++;
  }
  t->open->changes.push_back(std::move(change));
  t->open_bytes += bytes;
  t->per_sub[sub.value].first++;
  if (t->open_bytes >= options_.chunk_bytes) CloseChunk(t);
  return Status::Ok();
}

void Assembler::Commit(Txn* t, Lsn commit_lsn, Lsn end_lsn, PgTimestamp time) {
  if (t->skip || commit_lsn <= options_.skip_through || commit_lsn <= last_commit_lsn_) {
    // Already in the queue (resent after a restart). A non-streamed one never emitted a chunk;
    // a streamed one did: take its chunks back.
    if (t->open.has_value()) t->open.reset();
    if (!t->per_sub.empty()) {
      auto& chunks = batch_.chunks;
      chunks.erase(std::remove_if(chunks.begin(), chunks.end(),
                                  [&](const queue::ChangeChunk& c) { return c.xid == t->xid; }),
                   chunks.end());
      batch_.aborts.emplace_back(t->xid, t->xid);
    }
    ++skipped_;
    return;
  }
  CloseChunk(t);
  queue::CommitRecord c;
  c.commit_lsn = commit_lsn;
  c.end_lsn = end_lsn;
  c.xid = t->xid;
  c.commit_time = time;
  c.origin = t->origin;
  c.origin_lsn = t->origin_lsn;
  for (const auto& [sub, counts] : t->per_sub) {
    c.change_count += counts.first;
    c.chunk_count += counts.second;
  }
  batch_.commits.push_back(std::move(c));
  batch_bytes_ += 64;
  batch_end_lsn_ = end_lsn;
  last_commit_lsn_ = commit_lsn;
  ++committed_;
}

Result<queue::Change> Assembler::RowChange(queue::ChangeKind kind, RelationId relation,
                                           Lsn wal_start) const {
  const char* what = kind == queue::ChangeKind::kInsert   ? "insert"
                     : kind == queue::ChangeKind::kUpdate ? "update"
                                                          : "delete";
  queue::Change c;
  c.kind = kind;
  c.relation = relation;
  PGB_ASSIGN_OR_RETURN(c.relation_version, VersionOf(relation, what, wal_start));
  return c;
}

Status Assembler::Add(PgOutputMessage&& message, Lsn wal_start) {
  // Tuples and strings are moved out of `message` into the queue's change.
  return std::visit(
      [&](auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, BeginMsg>) {
          if (current_.has_value()) return ProtocolError("begin inside a transaction", wal_start);
          current_.emplace();
          current_->xid = m.xid;
          current_->skip = m.final_lsn <= options_.skip_through;
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, CommitMsg>) {
          if (!current_.has_value())
            return ProtocolError("commit outside a transaction", wal_start);
          Commit(&*current_, m.commit_lsn, m.end_lsn, m.commit_time);
          current_.reset();
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, OriginMsg>) {
          Txn* t = current_.has_value() ? &*current_ : nullptr;
          if (t == nullptr && stream_block_.has_value()) t = &streamed_[stream_block_->value];
          if (t == nullptr) return ProtocolError("origin outside a transaction", wal_start);
          t->origin = std::move(m.name);
          t->origin_lsn = m.origin_lsn;
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, RelationMsg>) {
          return OnRelation(m, wal_start);
        } else if constexpr (std::is_same_v<T, TypeMsg>) {
          type_messages_[m.oid] = QualifiedName{m.schema.empty() ? "pg_catalog" : m.schema, m.name};
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, InsertMsg>) {
          size_t bytes = 32 + TupleBytes(m.new_tuple);
          PGB_ASSIGN_OR_RETURN(queue::Change c,
                               RowChange(queue::ChangeKind::kInsert, m.relation, wal_start));
          c.new_tuple = std::move(m.new_tuple);
          return AddChange(m.xid, std::move(c), bytes, wal_start);
        } else if constexpr (std::is_same_v<T, UpdateMsg>) {
          size_t bytes =
              32 + TupleBytes(m.new_tuple) + (m.old_tuple ? TupleBytes(*m.old_tuple) : 0);
          PGB_ASSIGN_OR_RETURN(queue::Change c,
                               RowChange(queue::ChangeKind::kUpdate, m.relation, wal_start));
          c.old_tuple = std::move(m.old_tuple);
          c.old_is_key_only = m.old_kind == 'K';
          c.new_tuple = std::move(m.new_tuple);
          return AddChange(m.xid, std::move(c), bytes, wal_start);
        } else if constexpr (std::is_same_v<T, DeleteMsg>) {
          size_t bytes = 32 + TupleBytes(m.old_tuple);
          PGB_ASSIGN_OR_RETURN(queue::Change c,
                               RowChange(queue::ChangeKind::kDelete, m.relation, wal_start));
          c.old_tuple = std::move(m.old_tuple);
          c.old_is_key_only = m.old_kind == 'K';
          return AddChange(m.xid, std::move(c), bytes, wal_start);
        } else if constexpr (std::is_same_v<T, TruncateMsg>) {
          queue::Change c;
          c.kind = queue::ChangeKind::kTruncate;
          c.truncate_flags = m.flags;
          for (RelationId id : m.relations) {
            PGB_ASSIGN_OR_RETURN(uint32_t v, VersionOf(id, "truncate", wal_start));
            c.truncated.push_back(id);
            c.truncated_versions.push_back(v);
          }
          size_t bytes = 32 + 8 * m.relations.size();
          return AddChange(m.xid, std::move(c), bytes, wal_start);
        } else if constexpr (std::is_same_v<T, LogicalMsg>) {
          queue::Change c;
          c.kind = queue::ChangeKind::kMessage;
          size_t bytes = 32 + m.prefix.size() + m.content.size();
          c.message_prefix = std::move(m.prefix);
          c.message_content = std::move(m.content);
          if (m.transactional) return AddChange(m.xid, std::move(c), bytes, wal_start);
          // A non-transactional message is a transaction of its own, at its LSN.
          if (m.lsn <= options_.skip_through || m.lsn <= last_commit_lsn_) {
            ++skipped_;
            return Status::Ok();
          }
          Txn t;
          t.xid = m.xid.value_or(Xid{0});
          t.open.emplace();
          t.open->xid = t.xid;
          t.open->subxid = t.xid;
          t.open->changes.push_back(std::move(c));
          t.open_bytes = bytes;
          t.per_sub[t.xid.value].first = 1;
          Commit(&t, m.lsn, m.lsn, PgTimestamp{});
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, StreamStartMsg>) {
          if (current_.has_value())
            return ProtocolError("stream start inside a transaction", wal_start);
          stream_block_ = m.xid;
          Txn& t = streamed_[m.xid.value];
          t.xid = m.xid;
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, StreamStopMsg>) {
          if (!stream_block_.has_value())
            return ProtocolError("stream stop outside a stream", wal_start);
          // Hand the open chunk over: the transaction may stay open for long.
          auto it = streamed_.find(stream_block_->value);
          if (it != streamed_.end()) CloseChunk(&it->second);
          stream_block_.reset();
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, StreamCommitMsg>) {
          auto it = streamed_.find(m.xid.value);
          if (it == streamed_.end()) {
            return ProtocolError(
                fmt::format("stream commit of unknown transaction {}", m.xid.value), wal_start);
          }
          Commit(&it->second, m.commit_lsn, m.end_lsn, m.commit_time);
          streamed_.erase(it);
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, StreamAbortMsg>) {
          auto it = streamed_.find(m.xid.value);
          // The server may abort a transaction it streamed in an earlier session: still drop it.
          bool whole = m.subxid == m.xid;
          auto& chunks = batch_.chunks;
          chunks.erase(std::remove_if(chunks.begin(), chunks.end(),
                                      [&](const queue::ChangeChunk& c) {
                                        return c.xid == m.xid && (whole || c.subxid == m.subxid);
                                      }),
                       chunks.end());
          batch_.aborts.emplace_back(m.xid, m.subxid);
          if (it != streamed_.end()) {
            Txn& t = it->second;
            if (t.open.has_value() && (whole || t.open->subxid == m.subxid)) {
              t.open.reset();
              t.open_bytes = 0;
            }
            if (whole) {
              streamed_.erase(it);
            } else {
              t.per_sub.erase(m.subxid.value);
            }
          }
          return Status::Ok();
        } else {
          // Begin Prepare, Prepare, Commit Prepared, Rollback Prepared, Stream Prepare.
          return Status::Error(
              ErrorCode::kProtocol,
              fmt::format("pgoutput: unexpected two-phase message ({}) at LSN {}",
                          MessageName(message), wal_start.ToString()),
              "pgbaton streams without two_phase: the slot must be created by pgbaton (without "
              "TWO_PHASE)");
        }
      },
      message);
}

}  // namespace pgbaton::decoder
