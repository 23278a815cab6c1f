// Passwords from a file instead of the command line.
#include "tools/config/connection.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/conninfo.h"
#include "tools/config/queue_flags.h"

namespace pgbaton::tools {
namespace {

std::string PasswordOf(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  std::string out = "<unparsable>";
  if (opts == nullptr) return out;
  out = "<none>";
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "password" && o->val != nullptr) out = o->val;
  }
  PQconninfoFree(opts);
  return out;
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgbaton-pwfile-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
  }
  void TearDown() override { unlink(path_.c_str()); }
  void Write(const std::string& text) {
    std::ofstream(path_) << text;
    chmod(path_.c_str(), 0600);
  }
  std::string path_;
};

TEST_F(ConnectionTest, NoFileLeavesConninfoAlone) {
  auto r = ResolveConninfo("source", "host=db1 dbname=app", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "host=db1 dbname=app");
}

TEST_F(ConnectionTest, PasswordFromFileKeyValueForm) {
  Write("s3cr3t with 'quote' and \\ backslash\nsecond line ignored\n");
  auto r = ResolveConninfo("source", "host=db1 port=5433 dbname=app password=old", path_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(PasswordOf(*r), "s3cr3t with 'quote' and \\ backslash");
  EXPECT_NE(r->find("host='db1'"), std::string::npos) << MaskConninfo(*r);
  EXPECT_NE(r->find("port='5433'"), std::string::npos);
  EXPECT_EQ(MaskConninfo(*r).find("s3cr3t"), std::string::npos);
}

TEST_F(ConnectionTest, PasswordFromFileUriForm) {
  Write("pw\r\n");
  auto r = ResolveConninfo("target", "postgresql://app@db2:6000/shop?sslmode=disable", path_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(PasswordOf(*r), "pw");
  EXPECT_NE(r->find("dbname='shop'"), std::string::npos);
  EXPECT_NE(r->find("sslmode='disable'"), std::string::npos);
}

TEST_F(ConnectionTest, Errors) {
  auto empty = ResolveConninfo("source", "", "");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kUsage);
  EXPECT_NE(empty.status().hint().find("PGBATON_SOURCE"), std::string::npos);
  auto missing = ResolveConninfo("target", "host=x", "/nonexistent/pw");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  EXPECT_NE(missing.status().message().find("--target-password-file"), std::string::npos);
  Write("pw\n");
  auto bad = ResolveConninfo("source", "host=x bogus", path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kUsage);
}

// The connection and queue flags as a verb registers them: environment and required sides.
TEST(ConnectionFlagsTest, RequiredSidesAndNoFlagsForAnUnusedSide) {
  CLI::App app;
  ConnectionFlags conn;
  AddConnectionOptions(&app, &conn, Need::kRequired, Need::kNone);
  EXPECT_NE(app.get_option_no_throw("--source"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--source-password-file"), nullptr);
  EXPECT_EQ(app.get_option_no_throw("--target"), nullptr);
  EXPECT_EQ(app.get_option_no_throw("--target-password-file"), nullptr);
  EXPECT_THROW(app.parse(std::vector<std::string>{}), CLI::RequiredError);
  app.parse(std::vector<std::string>{"/tmp/pw", "--source-password-file", "host=a", "--source"});
  EXPECT_EQ(conn.source, "host=a");
  EXPECT_EQ(conn.source_password_file, "/tmp/pw");
}

Status CheckQueue(std::vector<std::string> reversed_args, QueueFlagsUse use = {}) {
  CLI::App app;
  QueueFlags q;
  q.Register(&app, use);
  app.parse(reversed_args);
  return q.Check("stream");
}

TEST(QueueFlagsTest, ExactlyOneQueue) {
  Status none = CheckQueue({});
  EXPECT_EQ(none.code(), ErrorCode::kUsage);
  EXPECT_EQ(none.message(), "stream: no queue given");
  EXPECT_EQ(CheckQueue({"/q", "--queue-dir"}).code(), ErrorCode::kOk);
  Status both = CheckQueue({"k:9092", "--kafka-brokers", "/q", "--queue-dir"});
  EXPECT_EQ(both.code(), ErrorCode::kUsage);
  EXPECT_NE(both.message().find("give one queue"), std::string::npos) << both.message();
  Status no_topic = CheckQueue({"k:9092", "--kafka-brokers"});
  EXPECT_EQ(no_topic.code(), ErrorCode::kUsage);
  EXPECT_NE(no_topic.message().find("needs --kafka-topic"), std::string::npos);
  EXPECT_EQ(CheckQueue({"k:9092", "--kafka-brokers"}, {.topic_defaults_to_name = true}).code(),
            ErrorCode::kOk);
  EXPECT_THROW(CheckQueue({"k:9092", "--kafka-brokers"}, {.kafka = false}), CLI::ParseError);
}

TEST(QueueFlagsTest, ToOptions) {
  CLI::App app;
  QueueFlags q;
  q.Register(&app, {.topic_defaults_to_name = true});
  app.parse(std::vector<std::string>{"/st", "--kafka-state-dir", "k:9092", "--kafka-brokers"});
  queue::QueueOptions o = q.ToOptions("app");
  EXPECT_EQ(o.kafka_brokers, "k:9092");
  EXPECT_EQ(o.kafka_topic, "app");  // defaulted to --name
  EXPECT_EQ(o.kafka_state_dir, "/st");
  EXPECT_EQ(o.migration_name, "app");
  EXPECT_TRUE(o.dir.empty());
  EXPECT_FALSE(o.read_only);
  EXPECT_EQ(q.Describe("app"), "kafka topic app");
}

}  // namespace
}  // namespace pgbaton::tools
