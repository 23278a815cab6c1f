#include "queue/kafka_meta_store.h"

#include <fmt/format.h>

namespace pgbaton::queue::kafka {

Result<std::unique_ptr<MetaStore>> MetaStore::Create(const std::string& brokers, std::string topic,
                                                     int timeout_ms, Producer* producer) {
  PGB_ASSIGN_OR_RETURN(auto consumer, Consumer::Create(brokers, timeout_ms));
  return std::unique_ptr<MetaStore>(new MetaStore(std::move(topic), std::move(consumer), producer));
}

Status MetaStore::Write(const std::vector<Entry>& entries) {
  if (producer_ == nullptr) {
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("kafka topic \"{}\" is open read-only", topic_));
  }
  for (const Entry& e : entries) {
    PGB_RETURN_IF_ERROR(producer_->Produce(topic_, e.key, e.value ? &*e.value : nullptr));
  }
  PGB_RETURN_IF_ERROR(producer_->Flush(topic_, nullptr));
  std::lock_guard<std::mutex> g(mu_);
  for (const Entry& e : entries) {
    if (e.value) {
      values_[e.key] = *e.value;
    } else {
      values_.erase(e.key);
    }
  }
  return Status::Ok();
}

Status MetaStore::Refresh() {
  std::lock_guard<std::mutex> g(mu_);
  int64_t low, high;
  PGB_RETURN_IF_ERROR(consumer_->Watermarks(topic_, &low, &high));
  if (next_ < 0) {
    PGB_RETURN_IF_ERROR(consumer_->Assign(topic_, RD_KAFKA_OFFSET_BEGINNING));
    next_ = low;
  }
  if (next_ >= high) return Status::Ok();
  return consumer_->ReadUntil(high, [&](Message& m, bool*) {
    next_ = m.offset + 1;
    if (m.tombstone) {
      values_.erase(m.key);
    } else {
      values_[m.key] = std::move(m.value);
    }
    return Status::Ok();
  });
}

Result<std::optional<std::string>> MetaStore::Value(const std::string& key, bool refresh) {
  if (refresh) PGB_RETURN_IF_ERROR(Refresh());
  std::lock_guard<std::mutex> g(mu_);
  auto it = values_.find(key);
  if (it == values_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Result<std::map<std::string, std::string>> MetaStore::List(const std::string& prefix) {
  PGB_RETURN_IF_ERROR(Refresh());
  std::lock_guard<std::mutex> g(mu_);
  std::map<std::string, std::string> out;
  for (auto it = values_.lower_bound(prefix);
       it != values_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.emplace(it->first, it->second);
  }
  return out;
}

}  // namespace pgbaton::queue::kafka
