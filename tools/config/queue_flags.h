// --queue-dir / --kafka-brokers / --kafka-topic / --kafka-state-dir for every verb that opens the
// work queue, their checks and their conversion to queue::QueueOptions. Registered here once, so
// each verb takes the same flags, PGBATON_* variables and config keys (tools/config/config.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "queue/work_queue.h"

namespace pgbaton::tools {

// Which of the queue flags a verb takes, and how it reads them.
struct QueueFlagsUse {
  bool kafka = true;                    // --kafka-brokers and --kafka-topic (cleanup: RocksDB only)
  bool kafka_state_dir = true;          // --kafka-state-dir (cutover opens the queue without one)
  bool topic_defaults_to_name = false;  // an empty --kafka-topic means --name (status, inspect)
  std::string dir_help = "the RocksDB work queue directory";  // --queue-dir's help line
};

struct QueueFlags {
  std::string dir;              // --queue-dir: the RocksDB queue's directory
  std::string kafka_brokers;    // --kafka-brokers: bootstrap servers host:port,...; selects Kafka
  std::string kafka_topic;      // --kafka-topic
  std::string kafka_state_dir;  // --kafka-state-dir: local state of the Kafka reader or writer

  // Adds the flags `use` names to `sub` and remembers `use` for Check and ToOptions.
  void Register(CLI::App* sub, QueueFlagsUse use = {});

  bool kafka() const { return !kafka_brokers.empty(); }

  // Exactly one queue: --queue-dir, or --kafka-brokers with a topic (given, or --name where the
  // verb defaults it). Errors: kUsage prefixed with `verb`, with a hint.
  Status Check(std::string_view verb) const;

  // The QueueOptions for migration `name` (read-write, created if missing: the caller sets
  // read_only and create_if_missing where it needs otherwise).
  queue::QueueOptions ToOptions(const std::string& name) const;

  // "DIR" or "kafka topic T", for messages and `status`.
  std::string Describe(const std::string& name) const;

 private:
  std::string Topic(const std::string& name) const;

  QueueFlagsUse use_;
};

}  // namespace pgbaton::tools
