// A real Apache Kafka broker for tests: one KRaft node (broker and controller in one JVM) on
// 127.0.0.1 on free ports, its storage formatted in a temporary directory. The jars come from
// Maven Central through scripts/kafka.pom.xml (scripts/setup puts them in .deps/kafka/libs).
// The destructor stops the broker and removes its data: nothing is left running.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "tests/support/process.h"

namespace pgbaton::testing {

struct KafkaBrokerOptions {
  int start_timeout_ms = 90000;  // how long Start/StartAgain wait for "Kafka Server started"
  std::string heap = "512m";     // -Xmx of the broker JVM
};

class KafkaBroker {
 public:
  // Formats storage and starts the broker. Errors: kNotFound when the jars or java are missing
  // (the message says to run scripts/setup), kTimeout with the log's tail when it does not start.
  static Result<std::unique_ptr<KafkaBroker>> Start(const KafkaBrokerOptions& options = {});
  ~KafkaBroker();

  // "127.0.0.1:PORT", for bootstrap.servers.
  std::string Brokers() const;
  int port() const { return port_; }

  Status Stop();        // SIGTERM and wait for a clean shutdown; data stays
  Status StartAgain();  // after Stop or Kill: same ports, same data
  void Kill();          // SIGKILL the broker (a crash)
  bool running() { return process_.running(); }
  std::string LogTail(size_t bytes = 4000) const;

  // Where the jars are: $PGBATON_DEPS_DIR/kafka/libs.
  static std::string LibsDir();

 private:
  KafkaBroker() = default;
  Status Launch();

  KafkaBrokerOptions options_;
  std::string root_;  // temp dir: server.properties, log4j.properties, data/, broker.log
  int port_ = 0;
  int controller_port_ = 0;
  ChildProcess process_;
};

}  // namespace pgbaton::testing
