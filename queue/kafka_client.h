// Thin RAII wrappers over librdkafka's C API for the Kafka queue backend: an idempotent producer
// whose Flush reports every delivery, a consumer pinned to partition 0 of one topic, and the admin
// calls the backend needs. rd_kafka_resp_err_t is converted to Status here, once. Internal to
// queue/. Not thread-safe: each object is used by one thread at a time.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace pgbaton::queue::kafka {

// kKafka naming `what`; transport errors and timeouts are retryable.
Status KafkaError(rd_kafka_resp_err_t err, std::string_view what, std::string_view hint = {});

struct Message {
  int64_t offset = -1;
  std::string key;
  std::string value;
  bool tombstone = false;  // null value (a deleted key in a compacted topic)
};

// The parts shared by producer and consumer: a handle and the admin/metadata calls.
class Client {
 public:
  virtual ~Client();
  // Checks the brokers answer within the timeout. Errors: kKafka ("unreachable").
  Status Ping();
  // Number of partitions of `topic`, or 0 when it does not exist.
  Result<int> PartitionCount(const std::string& topic);
  // Creates the topic with one partition unless it exists. `config`: topic settings.
  Status CreateTopic(const std::string& topic, const std::map<std::string, std::string>& config);
  Status Watermarks(const std::string& topic, int64_t* low, int64_t* high);
  // Deletes records of partition 0 before `offset`.
  Status DeleteRecordsBefore(const std::string& topic, int64_t offset);
  const std::string& brokers() const { return brokers_; }
  int timeout_ms() const { return timeout_ms_; }

 protected:
  Client(std::string brokers, int timeout_ms)
      : brokers_(std::move(brokers)), timeout_ms_(timeout_ms) {}
  rd_kafka_t* rk_ = nullptr;
  std::string brokers_;
  int timeout_ms_;
};

class Producer : public Client {
 public:
  // An idempotent producer (acks=all) whose messages time out after `timeout_ms`.
  static Result<std::unique_ptr<Producer>> Create(const std::string& brokers, int timeout_ms);
  ~Producer() override;
  // Queues one message for partition 0 of `topic`; `value` null sends a tombstone.
  Status Produce(const std::string& topic, std::string_view key, const std::string* value);
  // Waits until every queued message is delivered or failed. OK only if all were acknowledged;
  // `last_offset` (if given) receives the offset of the last message delivered to `topic`.
  Status Flush(const std::string& topic, int64_t* last_offset);

 private:
  Producer(std::string brokers, int timeout_ms) : Client(std::move(brokers), timeout_ms) {}
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  int64_t outstanding_ = 0;
  rd_kafka_resp_err_t first_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string first_error_text_;
  std::map<std::string, int64_t> last_offsets_;
};

class Consumer : public Client {
 public:
  static Result<std::unique_ptr<Consumer>> Create(const std::string& brokers, int timeout_ms);
  ~Consumer() override;
  // Starts reading partition 0 of `topic` at `offset` (RD_KAFKA_OFFSET_BEGINNING allowed).
  Status Assign(const std::string& topic, int64_t offset);
  enum class Event { kMessage, kEnd, kNone };
  // The next message (kMessage), the end of the partition (kEnd, with out->offset the offset the
  // next message will get), or nothing within `wait_ms`.
  Result<Event> Poll(int wait_ms, Message* out);
  // Reads until `high` (exclusive) or the end; calls `fn` for every message. Errors: kKafka when
  // no progress is made within the timeout.
  template <typename Fn>
  Status ReadUntil(int64_t high, Fn&& fn);

 private:
  Consumer(std::string brokers, int timeout_ms) : Client(std::move(brokers), timeout_ms) {}
};

template <typename Fn>
Status Consumer::ReadUntil(int64_t high, Fn&& fn) {
  Message m;
  int idle_ms = 0;
  while (true) {
    PGB_ASSIGN_OR_RETURN(Event e, Poll(100, &m));
    // An end-of-partition event before `high` is stale: it was queued when an earlier read
    // stopped at the end, before more messages arrived (a consumer read again from where it was,
    // like the meta topic's tail). The messages up to `high` are there: keep reading.
    if (e == Event::kEnd && (m.offset < 0 || m.offset >= high)) return Status::Ok();
    if (e == Event::kEnd) continue;
    if (e == Event::kNone) {
      idle_ms += 100;
      if (idle_ms >= timeout_ms()) {
        return KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT,
                          "reading from kafka brokers \"" + brokers() + "\"");
      }
      continue;
    }
    idle_ms = 0;
    bool more = true;
    PGB_RETURN_IF_ERROR(fn(m, &more));
    if (!more || m.offset + 1 >= high) return Status::Ok();
  }
}

}  // namespace pgbaton::queue::kafka
