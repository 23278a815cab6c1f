// The Kafka backend's meta topic ("<topic>.meta", compacted): relation descriptors, metadata and
// the queue's own settings as the latest value per key. A local copy is read from the topic's
// start once and then from where it stopped, so that a reader also sees what a writer in another
// process added after it opened. Internal to queue/. Thread-safe (one lock around the copy); Write
// uses the writer's producer, which only the writer thread uses.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "queue/kafka_client.h"

namespace pgbaton::queue::kafka {

class MetaStore {
 public:
  // One key's new value; nullopt deletes the key (a tombstone).
  struct Entry {
    std::string key;
    std::optional<std::string> value;
  };

  // A store of `topic` on `brokers`; `producer` (not owned, null for a reader) makes Write
  // possible. Errors: kKafka.
  static Result<std::unique_ptr<MetaStore>> Create(const std::string& brokers, std::string topic,
                                                   int timeout_ms, Producer* producer);

  // Produces every entry and waits until all are acknowledged (acks=all), then updates the local
  // copy. Errors: kKafka; kInternal without a producer.
  Status Write(const std::vector<Entry>& entries);
  // The value of `key`; with `refresh`, after reading what the topic gained since the last read.
  Result<std::optional<std::string>> Value(const std::string& key, bool refresh);
  // Every key starting with `prefix` (whole keys) and its value, after a refresh.
  Result<std::map<std::string, std::string>> List(const std::string& prefix);
  const std::string& topic() const { return topic_; }

 private:
  MetaStore(std::string topic, std::unique_ptr<Consumer> consumer, Producer* producer)
      : topic_(std::move(topic)), consumer_(std::move(consumer)), producer_(producer) {}
  // Reads the topic up to its current end into values_.
  Status Refresh();

  std::string topic_;
  std::mutex mu_;  // guards the fields below
  std::unique_ptr<Consumer> consumer_;
  Producer* producer_;
  std::map<std::string, std::string> values_;
  int64_t next_ = -1;  // the offset to read next; -1 before the first read
};

}  // namespace pgbaton::queue::kafka
