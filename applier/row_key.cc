#include "applier/row_key.h"

#include <xxhash.h>

#include <charconv>
#include <functional>

namespace pgbaton::applier {

void KeyBytes::Add(std::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  bytes_.append(reinterpret_cast<const char*>(&n), sizeof n);
  bytes_.append(s);
}

uint64_t KeyBytes::Hash() const { return XXH3_64bits(bytes_.data(), bytes_.size()); }

std::optional<RowKey> RowKey::Of(const TargetRelation& rel, const std::vector<int>& cols,
                                 const queue::Tuple& tuple) {
  RowKey k;
  k.rel_ = &rel;
  KeyBytes b('K');
  b.Add(rel.qualified_name);
  for (size_t i = 0; i < cols.size(); ++i) {
    int c = cols[i];
    if (c >= static_cast<int>(tuple.size())) return std::nullopt;
    b.Add(rel.columns[c].name);
    const queue::Value& v = tuple[c];
    if (v.kind == queue::ValueKind::kUnchangedToast) return std::nullopt;
    if (v.kind == queue::ValueKind::kNull) {
      b.AddNull();
      continue;
    }
    if (i == 0) {
      k.first_at_ = b.bytes().size() + sizeof(uint32_t);
      k.first_size_ = v.data.size();
    }
    b.Add(v.data);
  }
  k.hash_ = b.Hash();
  k.bytes_ = std::move(b.bytes());
  if (!cols.empty()) {
    const QualifiedName& type = rel.source.columns[static_cast<size_t>(cols[0])].type;
    if (type.schema == "pg_catalog" &&
        (type.name == "int4" || type.name == "int8" || type.name == "int2")) {
      std::string_view text = k.first();
      auto r = std::from_chars(text.data(), text.data() + text.size(), k.number_);
      k.numeric_ = r.ec == std::errc() && r.ptr == text.data() + text.size();
    }
  }
  return k;
}

bool RowKey::OrdersBefore(const RowKey& o) const {
  if (rel_ != o.rel_) return std::less<const TargetRelation*>()(rel_, o.rel_);
  if (numeric_ != o.numeric_) return numeric_;  // integers first
  return numeric_ ? number_ < o.number_ : first() < o.first();
}

}  // namespace pgbaton::applier
