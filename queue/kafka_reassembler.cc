#include "queue/kafka_reassembler.h"

#include <fmt/format.h>

#include "queue/kafka_layout.h"

namespace pgbaton::queue::kafka {

Result<std::optional<ReadyTxn>> TxnReassembler::Feed(Message* m) {
  std::string what = fmt::format("at offset {} of kafka topic \"{}\"", m->offset, topic_);
  if (m->tombstone) return CorruptAt(what, "empty message");
  PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(m->value, what));
  switch (info.type) {
    case RecordType::kChunk: {
      if (m->key.size() != 9 || m->key[0] != 'x') return CorruptAt(what, "bad chunk key");
      PendingChunk pc;
      pc.offset = m->offset;
      pc.subxid = GetBigEndian32(m->key.data() + 5);
      if (cached_ + m->value.size() <= budget_) {
        cached_ += m->value.size();
        pc.cached = true;
        pc.bytes = std::move(m->value);
      }
      pending_[GetBigEndian32(m->key.data() + 1)].push_back(std::move(pc));
      return std::optional<ReadyTxn>();
    }
    case RecordType::kCommit: {
      ReadyTxn t;
      t.offset = m->offset;
      PGB_RETURN_IF_ERROR(DecodeCommit(m->value, what, &t.commit));
      auto it = pending_.find(t.commit.commit.xid.value);
      if (it != pending_.end()) {
        t.chunks = std::move(it->second);
        pending_.erase(it);
        for (const auto& c : t.chunks) cached_ -= c.cached ? c.bytes.size() : 0;
      }
      if (t.commit.commit.commit_lsn <= skip_upto_) return std::optional<ReadyTxn>();
      skip_upto_ = t.commit.commit.commit_lsn;
      return std::optional<ReadyTxn>(std::move(t));
    }
    case RecordType::kAbort: {
      Xid xid, subxid;
      PGB_RETURN_IF_ERROR(DecodeAbort(m->value, what, &xid, &subxid));
      auto it = pending_.find(xid.value);
      if (it == pending_.end()) break;
      auto& v = it->second;
      for (auto c = v.begin(); c != v.end();) {
        if (subxid == xid || c->subxid == subxid.value) {
          cached_ -= c->cached ? c->bytes.size() : 0;
          c = v.erase(c);
        } else {
          ++c;
        }
      }
      if (v.empty()) pending_.erase(it);
      break;
    }
    case RecordType::kDiscard:
      pending_.clear();
      cached_ = 0;
      break;
    case RecordType::kTrim:
    case RecordType::kRelation:
      break;
  }
  return std::optional<ReadyTxn>();
}

}  // namespace pgbaton::queue::kafka
