#include "tools/config/queue_flags.h"

#include <fmt/format.h>

namespace pgbaton::tools {

void QueueFlags::Register(CLI::App* sub, QueueFlagsUse use) {
  use_ = std::move(use);
  sub->add_option("--queue-dir", dir, use_.dir_help);
  if (!use_.kafka) return;
  sub->add_option("--kafka-brokers", kafka_brokers,
                  "a Kafka queue instead: bootstrap servers (host:port,...)");
  sub->add_option("--kafka-topic", kafka_topic,
                  use_.topic_defaults_to_name ? "Kafka topic of the queue (default: --name)"
                                              : "Kafka topic of the queue");
  if (use_.kafka_state_dir) {
    sub->add_option("--kafka-state-dir", kafka_state_dir,
                    "local state of the Kafka reader or writer");
  }
}

Status QueueFlags::Check(std::string_view verb) const {
  const char* hint = use_.kafka ? "pass --queue-dir DIR, or --kafka-brokers and --kafka-topic"
                                : "pass --queue-dir DIR";
  if (dir.empty() && kafka_brokers.empty()) {
    return Status::Error(ErrorCode::kUsage, fmt::format("{}: no queue given", verb), hint);
  }
  if (!dir.empty() && !kafka_brokers.empty()) {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("{}: give one queue, not --queue-dir and --kafka-brokers", verb), hint);
  }
  if (kafka() && kafka_topic.empty() && !use_.topic_defaults_to_name) {
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("{}: --kafka-brokers needs --kafka-topic", verb),
                         "pass the topic that stream and apply use");
  }
  return Status::Ok();
}

std::string QueueFlags::Topic(const std::string& name) const {
  return kafka_topic.empty() && use_.topic_defaults_to_name ? name : kafka_topic;
}

queue::QueueOptions QueueFlags::ToOptions(const std::string& name) const {
  queue::QueueOptions o;
  o.dir = dir;
  o.kafka_brokers = kafka_brokers;
  o.kafka_topic = kafka() ? Topic(name) : kafka_topic;
  o.kafka_state_dir = kafka_state_dir;
  o.migration_name = name;
  return o;
}

std::string QueueFlags::Describe(const std::string& name) const {
  return kafka() ? fmt::format("kafka topic {}", Topic(name)) : dir;
}

}  // namespace pgbaton::tools
