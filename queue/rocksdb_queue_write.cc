// Writing the RocksDB queue: appends (chunks inline with their commit, or pending under a
// transaction number until it commits), subtransaction and transaction aborts, discarding what
// never committed, trimming, and metadata writes. One writer thread; every write is synced.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "queue/codec.h"
#include "queue/rocksdb_keys.h"
#include "queue/rocksdb_queue_impl.h"

namespace pgbaton::queue {

using namespace rocksdb_keys;

Status RocksDbQueue::Append(const RecordBatch& batch) {
  PGB_RETURN_IF_ERROR(CheckWritable("append"));
  if (batch.empty()) return Status::Ok();
  appended_ = true;
  rocksdb::WriteBatch wb;
  for (const RelationDescriptor& r : batch.relations)
    wb.Put(RelKey(r.id, r.version), EncodeRelation(r));

  std::unordered_map<uint32_t, OpenTxn> open = open_;  // staged; committed after the write
  uint64_t next_ref = next_ref_;
  std::vector<bool> dropped(batch.chunks.size(), false);
  for (auto [xid, subxid] : batch.aborts) {
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      const ChangeChunk& c = batch.chunks[i];
      if (c.xid == xid && (subxid == xid || c.subxid == subxid)) dropped[i] = true;
    }
    auto it = open.find(xid.value);
    if (it == open.end()) continue;
    if (subxid == xid) {
      DropOpen(&wb, it->second);
      open.erase(it);
    } else {
      PGB_RETURN_IF_ERROR(DropSubxact(&wb, subxid, &it->second));
    }
  }

  std::unordered_map<uint32_t, size_t> committing;  // xid -> index in batch.commits
  for (size_t i = 0; i < batch.commits.size(); ++i) committing[batch.commits[i].xid.value] = i;
  std::vector<std::vector<size_t>> chunks_of_commit(batch.commits.size());
  for (size_t i = 0; i < batch.chunks.size(); ++i) {
    if (dropped[i]) continue;
    const ChangeChunk& c = batch.chunks[i];
    auto cit = committing.find(c.xid.value);
    if (cit != committing.end()) {
      chunks_of_commit[cit->second].push_back(i);
      continue;
    }
    auto [it, inserted] = open.try_emplace(c.xid.value);
    if (inserted) {
      it->second.ref = next_ref++;
      std::string xid;
      PutBigEndian32(&xid, c.xid.value);
      wb.Put(RefKey(kOpenPrefix, it->second.ref), xid);
    }
    wb.Put(PendingKey(it->second.ref, it->second.next_seq++), EncodeChunk(c));
    ++it->second.count;
  }

  Lsn last = last_commit_;
  Lsn last_end = last_end_;
  for (size_t i = 0; i < batch.commits.size(); ++i) {
    StoredCommit stored{batch.commits[i], 0};
    CommitRecord& commit = stored.commit;
    auto oit = open.find(commit.xid.value);
    if (commit.commit_lsn <= last) {
      // The source resent a transaction the queue already holds (after a restart): keep the
      // first copy, drop this one and its chunks.
      LogDebug(fmt::format("queue: skipping commit {} of xid {}: already at {}",
                           commit.commit_lsn.ToString(), commit.xid.value, last.ToString()));
      if (oit != open.end()) {
        DropOpen(&wb, oit->second);
        open.erase(oit);
      }
      continue;
    }
    uint32_t count = 0;
    if (oit != open.end()) {
      OpenTxn& t = oit->second;
      for (size_t ci : chunks_of_commit[i]) {
        wb.Put(PendingKey(t.ref, t.next_seq++), EncodeChunk(batch.chunks[ci]));
        ++t.count;
      }
      stored.txn_ref = t.ref;
      count = t.count;
      wb.Delete(RefKey(kOpenPrefix, t.ref));
      open.erase(oit);
    } else {
      for (size_t ci : chunks_of_commit[i]) {
        wb.Put(InlineKey(commit.commit_lsn, count++), EncodeChunk(batch.chunks[ci]));
      }
    }
    commit.chunk_count = count;
    wb.Put(CommitKey(commit.commit_lsn), EncodeCommit(stored));
    last = commit.commit_lsn;
    last_end = commit.end_lsn;
  }
  if (next_ref != next_ref_) wb.Put(SysKey("next_txn_ref"), std::to_string(next_ref));
  PGB_RETURN_IF_ERROR(Write(&wb, "appending"));
  open_ = std::move(open);
  next_ref_ = next_ref;
  {
    std::lock_guard<std::mutex> g(mu_);
    last_commit_ = last;
    last_end_ = last_end;
    ++generation_;
  }
  cv_.notify_all();
  return Status::Ok();
}

Status RocksDbQueue::DiscardUncommitted() {
  PGB_RETURN_IF_ERROR(CheckWritable("discard uncommitted chunks"));
  rocksdb::WriteBatch wb;
  for (auto& [xid, t] : open_) DropOpen(&wb, t);
  if (wb.Count() == 0) return Status::Ok();
  PGB_RETURN_IF_ERROR(Write(&wb, "discarding uncommitted chunks"));
  open_.clear();
  return Status::Ok();
}

Status RocksDbQueue::Trim(Lsn upto) {
  PGB_RETURN_IF_ERROR(CheckWritable("trim"));
  if (!upto.IsValid()) return Status::Ok();
  std::string commit_end = upto == Lsn::Max() ? PrefixEnd(std::string(1, kCommitPrefix))
                                              : CommitKey(Lsn(upto.value() + 1));
  std::string inline_end = commit_end;
  inline_end[0] = commit_end.size() == 1 ? kInlinePrefix + 1 : kInlinePrefix;
  rocksdb::WriteBatch wb;
  std::vector<uint64_t> refs;
  {
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(std::string(1, kCommitPrefix)); it->Valid() && it->key().compare(commit_end) < 0;
         it->Next()) {
      StoredCommit s;
      Lsn lsn(GetBigEndian64(it->key().data() + 1));
      PGB_RETURN_IF_ERROR(DecodeCommit(View(it->value()), "commit " + lsn.ToString(), &s));
      if (s.txn_ref != 0) refs.push_back(s.txn_ref);
    }
    if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "trimming");
  }
  wb.DeleteRange(std::string(1, kCommitPrefix), commit_end);
  wb.DeleteRange(std::string(1, kInlinePrefix), inline_end);
  for (uint64_t ref : refs)
    wb.DeleteRange(RefKey(kPendingPrefix, ref), RefKey(kPendingPrefix, ref + 1));
  wb.Put(SysKey("trimmed_lsn"), std::to_string(upto.value()));
  PGB_RETURN_IF_ERROR(Write(&wb, "trimming"));
  // Range deletions only hide data; compacting the ranges frees the disk space now.
  rocksdb::CompactRangeOptions co;
  std::string cb(1, kCommitPrefix), kb(1, kInlinePrefix);
  rocksdb::Slice cbs(cb), ces(commit_end), kbs(kb), kes(inline_end);
  rocksdb::Status s = db_->CompactRange(co, &cbs, &ces);
  if (s.ok()) s = db_->CompactRange(co, &kbs, &kes);
  if (s.ok() && !refs.empty()) {
    std::string pb = RefKey(kPendingPrefix, refs.front()),
                pe = RefKey(kPendingPrefix, refs.back() + 1);
    rocksdb::Slice pbs(pb), pes(pe);
    s = db_->CompactRange(co, &pbs, &pes);
  }
  if (!s.ok()) return FromRocks(s, options_.dir, "compacting after a trim");
  return Status::Ok();
}

Status RocksDbQueue::PutMeta(const std::string& key, const std::string& value) {
  PGB_RETURN_IF_ERROR(CheckWritable("write metadata"));
  rocksdb::WriteBatch wb;
  wb.Put(MetaKey(key), value);
  return Write(&wb, "writing metadata \"" + key + "\"");
}

Status RocksDbQueue::DeleteMeta(const std::string& key) {
  PGB_RETURN_IF_ERROR(CheckWritable("delete metadata"));
  rocksdb::WriteBatch wb;
  wb.Delete(MetaKey(key));
  return Write(&wb, "deleting metadata \"" + key + "\"");
}

Status RocksDbQueue::CheckWritable(std::string_view op) {
  if (options_.read_only) {
    return Status::Error(
        ErrorCode::kInternal,
        fmt::format("queue \"{}\" is open read-only: cannot {}", options_.dir, op));
  }
  if (write_failed_) {
    // After an I/O error RocksDB stops writing; Resume() retries once the cause is gone.
    // While it cannot (the disk is still full, or recovery is busy) the first error stands.
    rocksdb::Status s = db_->Resume();
    if (!s.ok()) {
      LogDebug(fmt::format("queue \"{}\": cannot {} yet: {}", options_.dir, op, s.ToString()));
      return write_error_;
    }
    write_failed_ = false;
  }
  return Status::Ok();
}

Status RocksDbQueue::Write(rocksdb::WriteBatch* wb, std::string_view op) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, wb);
  if (!s.ok()) {
    write_failed_ = true;
    write_error_ = FromRocks(s, options_.dir, op);
    return write_error_;
  }
  return Status::Ok();
}

void RocksDbQueue::DropOpen(rocksdb::WriteBatch* wb, const OpenTxn& t) {
  wb->DeleteRange(RefKey(kPendingPrefix, t.ref), RefKey(kPendingPrefix, t.ref + 1));
  wb->Delete(RefKey(kOpenPrefix, t.ref));
}

Status RocksDbQueue::DropSubxact(rocksdb::WriteBatch* wb, Xid subxid, OpenTxn* t) {
  std::string p = RefKey(kPendingPrefix, t->ref);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(p); it->Valid() && StartsWith(it->key(), p); it->Next()) {
    ChangeChunk c;
    PGB_RETURN_IF_ERROR(DecodeChunk(View(it->value()), "pending chunk", &c));
    if (c.subxid == subxid) {
      wb->Delete(it->key());
      --t->count;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "aborting a subtransaction");
  return Status::Ok();
}

}  // namespace pgbaton::queue
