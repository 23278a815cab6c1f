#include "tests/support/kafka_broker.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

namespace pgbaton::testing {
namespace {

// A KRaft cluster id: 16 random bytes, base64url without padding (as `kafka-storage random-uuid`).
// It may start with '-', so it is passed as --cluster-id=ID.
std::string RandomClusterId() {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::string bits;
  for (int i = 0; i < 16; ++i) bits.push_back(static_cast<char>(rd()));
  std::string out;
  uint32_t acc = 0;
  int nbits = 0;
  for (unsigned char c : bits) {
    acc = (acc << 8) | c;
    nbits += 8;
    while (nbits >= 6) {
      out.push_back(kAlphabet[(acc >> (nbits - 6)) & 63]);
      nbits -= 6;
    }
  }
  if (nbits > 0) out.push_back(kAlphabet[(acc << (6 - nbits)) & 63]);
  return out;
}

}  // namespace

std::string KafkaBroker::LibsDir() { return DepsDir() + "/kafka/libs"; }

Result<std::unique_ptr<KafkaBroker>> KafkaBroker::Start(const KafkaBrokerOptions& options) {
  std::error_code ec;
  std::string libs = LibsDir();
  bool have_jars = false;
  for (const auto& e : std::filesystem::directory_iterator(libs, ec)) {
    if (e.path().filename().string().rfind("kafka_2.13-", 0) == 0) have_jars = true;
  }
  if (!have_jars) {
    return Status::Error(
        ErrorCode::kNotFound, fmt::format("kafka broker jars not found in {}", libs),
        "run scripts/setup (it fetches them from Maven Central with scripts/kafka.pom.xml)");
  }
  if (RunCommand({"java", "-version"}).exit_code != 0) {
    return Status::Error(ErrorCode::kNotFound, "java not found: the kafka broker needs a JRE 17",
                         "run scripts/setup");
  }
  std::unique_ptr<KafkaBroker> b(new KafkaBroker());
  b->options_ = options;
  b->root_ = MakeTempDir("pgbaton-kafka");
  b->port_ = FreePort();
  do {
    b->controller_port_ = FreePort();
  } while (b->controller_port_ == b->port_);
  WriteFile(b->root_ + "/server.properties",
            fmt::format("process.roles=broker,controller\n"
                        "node.id=1\n"
                        "controller.quorum.voters=1@127.0.0.1:{1}\n"
                        "listeners=PLAINTEXT://127.0.0.1:{0},CONTROLLER://127.0.0.1:{1}\n"
                        "advertised.listeners=PLAINTEXT://127.0.0.1:{0}\n"
                        "controller.listener.names=CONTROLLER\n"
                        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                        "inter.broker.listener.name=PLAINTEXT\n"
                        "log.dirs={2}/data\n"
                        "num.partitions=1\n"
                        "offsets.topic.replication.factor=1\n"
                        "transaction.state.log.replication.factor=1\n"
                        "transaction.state.log.min.isr=1\n"
                        "group.initial.rebalance.delay.ms=0\n"
                        "auto.create.topics.enable=false\n"
                        "log.retention.check.interval.ms=5000\n"
                        "log.cleaner.backoff.ms=1000\n",
                        b->port_, b->controller_port_, b->root_));
  WriteFile(b->root_ + "/log4j.properties",
            fmt::format("log4j.rootLogger=WARN, file\n"
                        "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
                        "log4j.appender.file=org.apache.log4j.FileAppender\n"
                        "log4j.appender.file.File={}/broker.log\n"
                        "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n",
                        b->root_));
  CommandResult format = RunCommand(
      {"java", "-cp", libs + "/*", "-Dlog4j.configuration=file:" + b->root_ + "/log4j.properties",
       "kafka.tools.StorageTool", "format", "--cluster-id=" + RandomClusterId(), "-c",
       b->root_ + "/server.properties"});
  if (format.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal, "kafka storage format failed: " + format.output);
  }
  PGB_RETURN_IF_ERROR(b->Launch());
  return b;
}

Status KafkaBroker::Launch() {
  std::string log = root_ + "/broker.log";
  size_t log_start = ReadFile(log).size();
  ProcessOptions po;
  po.stdout_path = root_ + "/stdout.log";
  process_ = ChildProcess(
      {"java", "-Xmx" + options_.heap, "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
       "-cp", LibsDir() + "/*", "-Dlog4j.configuration=file:" + root_ + "/log4j.properties",
       "kafka.Kafka", root_ + "/server.properties"},
      po);
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFile(log);
    if (text.size() > log_start &&
        text.find("Kafka Server started", log_start) != std::string::npos) {
      return Status::Ok();
    }
    if (!process_.running()) {
      return Status::Error(ErrorCode::kInternal,
                           "kafka broker exited while starting:\n" + LogTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  process_.Kill();
  return Status::Error(ErrorCode::kTimeout, "kafka broker did not start in time:\n" + LogTail());
}

KafkaBroker::~KafkaBroker() {
  if (process_.running()) {
    process_.Signal(SIGTERM);
    if (process_.Wait(20000) == -2) process_.Kill();
  }
  if (!root_.empty()) RemoveTree(root_);
}

std::string KafkaBroker::Brokers() const { return fmt::format("127.0.0.1:{}", port_); }

Status KafkaBroker::Stop() {
  if (!process_.running()) return Status::Ok();
  process_.Signal(SIGTERM);
  if (process_.Wait(30000) == -2) {
    process_.Kill();
    return Status::Error(ErrorCode::kTimeout, "kafka broker did not stop in 30 s; killed it");
  }
  return Status::Ok();
}

Status KafkaBroker::StartAgain() {
  if (process_.running()) return Status::Ok();
  return Launch();
}

void KafkaBroker::Kill() { process_.Kill(); }

std::string KafkaBroker::LogTail(size_t bytes) const {
  std::string text = ReadFile(root_ + "/broker.log") + ReadFile(root_ + "/stdout.log");
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace pgbaton::testing
