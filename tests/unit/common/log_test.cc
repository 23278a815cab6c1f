// Logging through a pipe: the human and JSON line formats, level filtering, and secrets scrubbed
// from both messages and fields.
#include "common/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>

namespace pgbaton {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = GetLogOptions();
    ASSERT_EQ(pipe(fds_), 0);
    fcntl(fds_[0], F_SETFL, O_NONBLOCK);
  }
  void TearDown() override {
    SetLogOptions(saved_);
    close(fds_[0]);
    close(fds_[1]);
  }
  void Use(LogFormat format, LogLevel min_level = LogLevel::kInfo) {
    LogOptions o;
    o.format = format;
    o.min_level = min_level;
    o.fd = fds_[1];
    SetLogOptions(o);
  }
  std::string Drain() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds_[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  int fds_[2] = {-1, -1};
  LogOptions saved_;
};

TEST_F(LogTest, HumanLine) {
  Use(LogFormat::kHuman);
  LogInfo("copy started", {{"table", "public.a"}, {"note", "two words"}, {"empty", ""}});
  std::string line = Drain();
  std::regex re(
      R"(^\d\d:\d\d:\d\d\.\d\d\d info    copy started table=public\.a note="two words" empty=""\n$)");
  EXPECT_TRUE(std::regex_match(line, re)) << line;
}

TEST_F(LogTest, JsonLine) {
  Use(LogFormat::kJson);
  LogWarning("lag is high", {{"lag_bytes", "12345"}});
  std::string line = Drain();
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per message";
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["msg"], "lag is high");
  EXPECT_EQ(j["lag_bytes"], "12345");
  std::string ts = j["ts"];
  EXPECT_TRUE(std::regex_match(ts, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"))) << ts;
}

// Numbers are JSON numbers ("exit_code":80, not "exit_code":"80"); text that looks like a number
// stays text; the human format prints both the same way.
TEST_F(LogTest, NumbersAreJsonNumbers) {
  Use(LogFormat::kJson);
  LogError("stopped", {{"exit_code", 80},
                       {"jobs", size_t{2}},
                       {"lsn_bytes", uint64_t{18446744073709551615u}},
                       {"delta", int64_t{-3}},
                       {"cpu_s", 0.25},
                       {"name", "2"}});
  auto j = nlohmann::json::parse(Drain());
  EXPECT_TRUE(j["exit_code"].is_number_integer()) << j.dump();
  EXPECT_EQ(j["exit_code"], 80);
  EXPECT_EQ(j["jobs"], 2);
  EXPECT_EQ(j["lsn_bytes"].get<uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(j["delta"], -3);
  EXPECT_TRUE(j["cpu_s"].is_number_float()) << j.dump();
  EXPECT_DOUBLE_EQ(j["cpu_s"].get<double>(), 0.25);
  EXPECT_TRUE(j["name"].is_string()) << j.dump();

  Use(LogFormat::kHuman);
  LogInfo("stopped", {{"exit_code", 80}, {"cpu_s", 0.25}});
  std::string human = Drain();
  EXPECT_NE(human.find("exit_code=80 cpu_s=0.25"), std::string::npos) << human;
}

TEST_F(LogTest, LevelFilter) {
  Use(LogFormat::kHuman, LogLevel::kWarning);
  LogDebug("d");
  LogInfo("i");
  EXPECT_EQ(Drain(), "");
  LogError("e");
  EXPECT_NE(Drain().find("error   e"), std::string::npos);
}

TEST_F(LogTest, SecretsAreScrubbedInBothFormats) {
  for (LogFormat f : {LogFormat::kHuman, LogFormat::kJson}) {
    Use(f);
    LogError("cannot connect to host=x password=hunter2x",
             {{"source", "postgresql://u:hunter2x@h/db"}});
    std::string out = Drain();
    EXPECT_EQ(out.find("hunter2x"), std::string::npos) << out;
    EXPECT_NE(out.find("*****"), std::string::npos) << out;
  }
}

TEST_F(LogTest, JsonEscapesControlCharactersAndInvalidUtf8) {
  Use(LogFormat::kJson);
  LogInfo("quote \" newline \n tab \t bad \xff byte");
  std::string line = Drain();
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  auto j = nlohmann::json::parse(line);  // throws (fails the test) if invalid
  std::string msg = j["msg"];
  EXPECT_NE(msg.find("quote \" newline \n tab"), std::string::npos);
}

TEST(LogParseTest, LevelsAndFormats) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warning", &l));
  EXPECT_EQ(l, LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
  LogFormat f;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

}  // namespace
}  // namespace pgbaton
