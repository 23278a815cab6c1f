#include "applier/write_set.h"

#include <algorithm>
#include <string>

#include "applier/row_key.h"

namespace pgbaton::applier {

namespace {

uint64_t RelationHash(const TargetRelation& rel) {
  KeyBytes h('R');
  h.Add(rel.qualified_name);
  return h.Hash();
}

uint64_t IndexHash(const TargetRelation& rel, const std::vector<int>& cols) {
  KeyBytes h('I');
  h.Add(rel.qualified_name);
  for (int c : cols) h.Add(rel.columns[c].name);
  return h.Hash();
}

bool Contains(const std::vector<int>& set, const std::vector<int>& cols) {
  for (int c : cols) {
    if (std::find(set.begin(), set.end(), c) == set.end()) return false;
  }
  return true;
}

}  // namespace

WriteKey GlobalKey(bool exclusive) {
  static const uint64_t kGlobal = KeyBytes('G').Hash();
  return WriteKey{kGlobal, exclusive};
}

void AddChangeKeys(const TargetRelation& rel, const queue::Change& change, WriteSet* out,
                   int change_index) {
  out->push_back(GlobalKey(false));
  uint64_t rel_hash = RelationHash(rel);
  bool opaque_index = false;
  for (const auto& idx : rel.unique_indexes) opaque_index |= idx.empty();
  bool modifies = change.kind != queue::ChangeKind::kInsert;
  if (opaque_index || (modifies && !rel.HasKey())) {
    out->push_back(WriteKey{rel_hash, true});
    return;
  }
  out->push_back(WriteKey{rel_hash, false});

  const queue::Tuple* old_t = change.old_tuple ? &*change.old_tuple : nullptr;
  const queue::Tuple* new_t = change.new_tuple ? &*change.new_tuple : nullptr;
  bool full_old = old_t != nullptr && !change.old_is_key_only;
  size_t first_row_key = out->size();
  // The row's identity key: old (when sent) and new.
  if (rel.HasKey()) {
    for (const queue::Tuple* t : {old_t, new_t}) {
      if (t == nullptr) continue;
      if (auto key = RowKey::Of(rel, rel.key_columns, *t))
        out->push_back(WriteKey{key->Hash(), true});
    }
  }
  // Every unique index: new values, old values when known; otherwise the whole index.
  for (const auto& idx : rel.unique_indexes) {
    uint64_t idx_hash = IndexHash(rel, idx);
    bool known_old = !modifies || full_old || Contains(rel.key_columns, idx);
    bool known_new = true;
    if (new_t != nullptr) {
      if (auto key = RowKey::Of(rel, idx, *new_t)) {
        out->push_back(WriteKey{key->Hash(), true});
      } else {
        known_new = false;
      }
    }
    if (modifies && known_old) {
      const queue::Tuple* ot = old_t != nullptr ? old_t : new_t;  // no old: key unchanged
      std::optional<RowKey> key = ot != nullptr ? RowKey::Of(rel, idx, *ot) : std::nullopt;
      if (!key) {
        known_old = false;
      } else {
        out->push_back(WriteKey{key->Hash(), true});
      }
    }
    out->push_back(WriteKey{idx_hash, !(known_old && known_new)});
  }
  if (change_index >= 0 && Mergeable(rel, change)) {
    // Its only unique index is the key: every exclusive key taken above names this one row.
    for (size_t i = first_row_key; i < out->size(); ++i) {
      if ((*out)[i].exclusive) (*out)[i].deferrable_change = change_index;
    }
  }
}

void AddTruncateKeys(const std::vector<const TargetRelation*>& rels, uint8_t flags, WriteSet* out) {
  out->push_back(GlobalKey((flags & queue::kTruncateCascade) != 0));
  for (const auto* r : rels) out->push_back(WriteKey{RelationHash(*r), true});
}

uint64_t ConflictTracker::Acquire(const WriteSet& ws, uint64_t seq,
                                  std::vector<std::pair<int32_t, uint64_t>>* deferred) {
  uint64_t dep = 0;
  std::vector<uint64_t>* taken = nullptr;
  if (by_group_.empty() || by_group_.back().first != seq)
    by_group_.emplace_back(seq, std::vector<uint64_t>{});
  taken = &by_group_.back().second;
  for (const WriteKey& k : ws) {
    auto [it, inserted] = held_.try_emplace(k.hash);
    Holders& hd = it->second;
    if (!inserted) {
      uint64_t d = 0;
      if (hd.exclusive != seq) d = std::max(d, hd.exclusive);
      if (k.exclusive && hd.shared != seq) d = std::max(d, hd.shared);
      if (d > 0 && d < seq && deferred != nullptr && k.deferrable_change >= 0) {
        deferred->emplace_back(k.deferrable_change, d);
      } else {
        dep = std::max(dep, d);
      }
    }
    if (k.exclusive) {
      hd.exclusive = seq;
    } else {
      hd.shared = seq;
    }
    taken->push_back(k.hash);
  }
  return dep >= seq ? 0 : dep;
}

void ConflictTracker::Release(uint64_t committed_seq) {
  while (!by_group_.empty() && by_group_.front().first <= committed_seq) {
    for (uint64_t h : by_group_.front().second) {
      auto it = held_.find(h);
      if (it != held_.end() && std::max(it->second.exclusive, it->second.shared) <= committed_seq) {
        held_.erase(it);
      }
    }
    by_group_.pop_front();
  }
}

}  // namespace pgbaton::applier
