#include "queue/kafka_client.h"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "common/log.h"

namespace pgbaton::queue::kafka {
namespace {

// rd_kafka_conf_t owned until rd_kafka_new takes it.
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

Status Set(rd_kafka_conf_t* conf, const char* name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name, value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("kafka setting {}={}: {}", name, value, err));
  }
  return Status::Ok();
}

Result<ConfPtr> BaseConf(const std::string& brokers, int timeout_ms) {
  ConfPtr conf(rd_kafka_conf_new());
  PGB_RETURN_IF_ERROR(Set(conf.get(), "bootstrap.servers", brokers));
  PGB_RETURN_IF_ERROR(
      Set(conf.get(), "socket.timeout.ms", std::to_string(std::max(timeout_ms, 10))));
  // librdkafka's own lines (reconnects while a broker restarts) go to our log at debug level: the
  // errors that matter reach the caller as a Status.
  rd_kafka_conf_set_log_cb(conf.get(),
                           [](const rd_kafka_t*, int, const char* fac, const char* buf) {
                             LogDebug(fmt::format("kafka {}: {}", fac, buf));
                           });
  PGB_RETURN_IF_ERROR(Set(conf.get(), "reconnect.backoff.max.ms", "1000"));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "socket.nagle.disable", "true"));  // small requests, no delay
  return conf;
}

Status RdNew(rd_kafka_type_t type, ConfPtr conf, rd_kafka_t** out) {
  char err[512];
  *out = rd_kafka_new(type, conf.get(), err, sizeof(err));
  if (!*out)
    return Status::Error(ErrorCode::kKafka, fmt::format("cannot create a kafka client: {}", err));
  conf.release();  // owned by the handle now
  return Status::Ok();
}

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};

}  // namespace

Status KafkaError(rd_kafka_resp_err_t err, std::string_view what, std::string_view hint) {
  bool retryable = err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                   err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                   err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
  return Status::Error(ErrorCode::kKafka, fmt::format("{}: {}", what, rd_kafka_err2str(err)),
                       hint.empty()
                           ? "check that the brokers run and are reachable (--kafka-brokers)"
                           : std::string(hint),
                       retryable);
}

Client::~Client() {
  if (rk_) rd_kafka_destroy(rk_);
}

Status Client::Ping() {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, nullptr, &md, timeout_ms_);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, fmt::format("kafka brokers \"{}\" did not answer within {} ms", brokers_,
                                       timeout_ms_));
  }
  rd_kafka_metadata_destroy(md);
  return Status::Ok();
}

Result<int> Client::PartitionCount(const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, rkt, &md, timeout_ms_);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err,
                      fmt::format("kafka topic \"{}\": metadata from \"{}\"", topic, brokers_));
  }
  int n = 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    n = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

Status Client::CreateTopic(const std::string& topic,
                           const std::map<std::string, std::string>& config) {
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 1, -1, err, sizeof(err));
  if (!nt)
    return Status::Error(ErrorCode::kKafka, fmt::format("kafka topic \"{}\": {}", topic, err));
  for (const auto& [k, v] : config) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> q(rd_kafka_queue_new(rk_));
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> opts(
      rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_request_timeout(opts.get(), timeout_ms_, err, sizeof(err));
  rd_kafka_CreateTopics(rk_, &nt, 1, opts.get(), q.get());
  rd_kafka_NewTopic_destroy(nt);
  std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(
      rd_kafka_queue_poll(q.get(), timeout_ms_ + 2000));
  if (!ev)
    return KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT,
                      fmt::format("creating kafka topic \"{}\"", topic));
  if (rd_kafka_event_error(ev.get())) {
    return KafkaError(rd_kafka_event_error(ev.get()),
                      fmt::format("creating kafka topic \"{}\"", topic));
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      return KafkaError(e, fmt::format("creating kafka topic \"{}\"", topic));
    }
  }
  return Status::Ok();
}

Status Client::Watermarks(const std::string& topic, int64_t* low, int64_t* high) {
  // A topic created a moment ago may not have a leader yet: retry those answers until the timeout.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  rd_kafka_resp_err_t err;
  while (true) {
    err = rd_kafka_query_watermark_offsets(rk_, topic.c_str(), 0, low, high, timeout_ms_);
    bool transient = err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                     err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                     err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                     err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                     err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
    if (!transient || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(
        err, fmt::format("kafka topic \"{}\" on \"{}\": reading its offsets", topic, brokers_));
  }
  return Status::Ok();
}

Status Client::DeleteRecordsBefore(const std::string& topic, int64_t offset) {
  char err[512];
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = offset;
  rd_kafka_DeleteRecords_t* del = rd_kafka_DeleteRecords_new(parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> q(rd_kafka_queue_new(rk_));
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> opts(
      rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_DELETERECORDS));
  rd_kafka_AdminOptions_set_operation_timeout(opts.get(), timeout_ms_, err, sizeof(err));
  rd_kafka_DeleteRecords(rk_, &del, 1, opts.get(), q.get());
  rd_kafka_DeleteRecords_destroy(del);
  std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(
      rd_kafka_queue_poll(q.get(), timeout_ms_ + 2000));
  std::string what =
      fmt::format("kafka topic \"{}\": deleting records before offset {}", topic, offset);
  if (!ev) return KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, what);
  if (rd_kafka_event_error(ev.get())) return KafkaError(rd_kafka_event_error(ev.get()), what);
  const rd_kafka_topic_partition_list_t* res =
      rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev.get()));
  if (res && res->cnt == 1 && res->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(res->elems[0].err, what);
  }
  return Status::Ok();
}

// --- producer ---

Result<std::unique_ptr<Producer>> Producer::Create(const std::string& brokers, int timeout_ms) {
  std::unique_ptr<Producer> p(new Producer(brokers, timeout_ms));
  PGB_ASSIGN_OR_RETURN(ConfPtr conf, BaseConf(brokers, timeout_ms));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "enable.idempotence", "true"));  // implies acks=all
  PGB_RETURN_IF_ERROR(Set(conf.get(), "acks", "all"));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "message.timeout.ms", std::to_string(timeout_ms)));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "linger.ms", "0"));  // Append flushes right away anyway
  PGB_RETURN_IF_ERROR(Set(conf.get(), "message.max.bytes", std::to_string(64 << 20)));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "queue.buffering.max.kbytes", std::to_string(1 << 20)));
  // Large values are zstd already; LZ4 per batch compresses the many small ones cheaply.
  PGB_RETURN_IF_ERROR(Set(conf.get(), "compression.type", "lz4"));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Producer::OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), p.get());
  PGB_RETURN_IF_ERROR(RdNew(RD_KAFKA_PRODUCER, std::move(conf), &p->rk_));
  return p;
}

Producer::~Producer() {
  if (rk_) rd_kafka_flush(rk_, 1000);
}

void Producer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* p = static_cast<Producer*>(opaque);
  --p->outstanding_;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (p->first_error_ == RD_KAFKA_RESP_ERR_NO_ERROR) {
      p->first_error_ = m->err;
      p->first_error_text_ = rd_kafka_message_errstr(m);
    }
    return;
  }
  std::string topic = rd_kafka_topic_name(m->rkt);
  int64_t& last = p->last_offsets_[topic];
  last = std::max(last, static_cast<int64_t>(m->offset));
}

Status Producer::Produce(const std::string& topic, std::string_view key, const std::string* value) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  while (true) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                         value ? value->size() : 0),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++outstanding_;
      return Status::Ok();
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() > deadline) {
      return KafkaError(err, fmt::format("producing to kafka topic \"{}\"", topic));
    }
    rd_kafka_poll(rk_, 50);  // serve delivery reports to make room
  }
}

Status Producer::Flush(const std::string& topic, int64_t* last_offset) {
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_, timeout_ms_ + 5000);
  std::string what = fmt::format("kafka topic \"{}\" on \"{}\"", topic, brokers_);
  char fatal[512];
  rd_kafka_resp_err_t f = rd_kafka_fatal_error(rk_, fatal, sizeof(fatal));
  if (f != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Error(
        ErrorCode::kKafka, fmt::format("{}: the idempotent producer failed: {}", what, fatal),
        "restart the writer; the queue resumes after its last durable transaction");
  }
  if (first_error_ != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Status s = Status::Error(
        ErrorCode::kKafka, fmt::format("{}: delivery failed: {}", what, first_error_text_),
        "check that the brokers run and are reachable (--kafka-brokers)", true);
    first_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
    return s;
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || outstanding_ > 0) {
    return KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, what + ": not every message was acknowledged");
  }
  if (last_offset) {
    auto it = last_offsets_.find(topic);
    *last_offset = it == last_offsets_.end() ? -1 : it->second;
  }
  return Status::Ok();
}

// --- consumer ---

Result<std::unique_ptr<Consumer>> Consumer::Create(const std::string& brokers, int timeout_ms) {
  std::unique_ptr<Consumer> c(new Consumer(brokers, timeout_ms));
  PGB_ASSIGN_OR_RETURN(ConfPtr conf, BaseConf(brokers, timeout_ms));
  PGB_RETURN_IF_ERROR(
      Set(conf.get(), "group.id", "pgbaton-reader"));  // unused: partitions are assigned
  PGB_RETURN_IF_ERROR(Set(conf.get(), "enable.auto.commit", "false"));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "enable.auto.offset.store", "false"));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "enable.partition.eof", "true"));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "auto.offset.reset", "earliest"));
  PGB_RETURN_IF_ERROR(Set(conf.get(), "fetch.wait.max.ms", "50"));
  PGB_RETURN_IF_ERROR(
      Set(conf.get(), "queued.max.messages.kbytes", "16384"));  // bounds prefetch memory
  PGB_RETURN_IF_ERROR(RdNew(RD_KAFKA_CONSUMER, std::move(conf), &c->rk_));
  return c;
}

Consumer::~Consumer() {
  if (rk_) rd_kafka_consumer_close(rk_);
}

Status Consumer::Assign(const std::string& topic, int64_t offset) {
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = offset;
  rd_kafka_resp_err_t err = rd_kafka_assign(rk_, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return KafkaError(err, fmt::format("reading kafka topic \"{}\"", topic));
  return Status::Ok();
}

Result<Consumer::Event> Consumer::Poll(int wait_ms, Message* out) {
  rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, wait_ms);
  if (!m) return Event::kNone;
  std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> guard(
      m, rd_kafka_message_destroy);
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    out->offset = m->offset;  // the offset the next message will have
    return Event::kEnd;
  }
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Transport errors are reported here while librdkafka reconnects by itself; the caller's
    // timeout decides when to give up. Anything else (a deleted topic, an out-of-range offset)
    // is an error now.
    if (m->err == RD_KAFKA_RESP_ERR__TRANSPORT || m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
        m->err == RD_KAFKA_RESP_ERR__RESOLVE) {
      LogDebug(fmt::format("kafka: {}", rd_kafka_err2str(m->err)));
      return Event::kNone;
    }
    return KafkaError(m->err, fmt::format("reading kafka topic on \"{}\"", brokers_));
  }
  out->offset = m->offset;
  if (m->key) {
    out->key.assign(static_cast<const char*>(m->key), m->key_len);
  } else {
    out->key.clear();
  }
  out->tombstone = m->payload == nullptr;
  out->value.assign(m->payload ? static_cast<const char*>(m->payload) : "", m->len);
  return Event::kMessage;
}

}  // namespace pgbaton::queue::kafka
