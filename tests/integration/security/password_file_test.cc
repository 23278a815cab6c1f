// Every verb that connects takes the same connection flags: --source/--target with
// --source-password-file/--target-password-file (and PGBATON_*_PASSWORD_FILE). Against servers
// that demand scram-sha-256, with no .pgpass and no PGPASSWORD, verbs that had no password-file
// flags before (preflight, apply) log in with the password from the file, and fail to with a
// wrong one: the file is what they connect with.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error_code.h"
#include "tests/support/pg_server.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

// A conninfo without a password: it has to come from the password file.
std::string Bare(const PgServer& s) {
  return fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", s.port());
}

std::string PasswordFile(const std::string& dir, const std::string& name,
                         const std::string& password) {
  std::string path = dir + "/" + name;
  WriteFile(path, password + "\n");
  ::chmod(path.c_str(), 0600);
  return path;
}

// No password from anywhere but the flags under test.
ProcessOptions NoOtherPassword(std::map<std::string, std::string> extra = {}) {
  ProcessOptions po;
  po.env = {{"PGPASSFILE", "/nonexistent/pgpass"}, {"PGPASSWORD", ""}};
  po.env.insert(extra.begin(), extra.end());
  return po;
}

TEST(PasswordFileTest, EveryVerbThatConnectsTakesTheConnectionFlags) {
  // verb -> (takes --source, takes --target)
  const std::map<std::string, std::pair<bool, bool>> verbs = {
      {"preflight", {true, true}}, {"verify", {true, true}},  {"cleanup", {true, true}},
      {"status", {true, true}},    {"copy", {true, true}},    {"cutover", {true, true}},
      {"run", {true, true}},       {"stream", {true, false}}, {"apply", {false, true}}};
  for (const auto& [verb, sides] : verbs) {
    CommandResult help = RunCommand({PgbatonBinary(), verb, "--help"});
    ASSERT_EQ(help.exit_code, 0) << verb << ": " << help.output;
    for (const char* side_name : {"source", "target"}) {
      const std::string side = side_name;
      bool takes = side == "source" ? sides.first : sides.second;
      for (const std::string& flag : {"--" + side + " ", "--" + side + "-password-file "}) {
        EXPECT_EQ(help.output.find(flag) != std::string::npos, takes)
            << verb << (takes ? " lacks " : " should not take ") << flag << "\n"
            << help.output;
      }
      std::string env =
          side == "source" ? "PGBATON_SOURCE_PASSWORD_FILE" : "PGBATON_TARGET_PASSWORD_FILE";
      EXPECT_EQ(help.output.find(env) != std::string::npos, takes) << verb << ": " << env;
    }
  }
}

TEST(PasswordFileTest, PreflightAndApplyConnectWithThePasswordFiles) {
  // Loopback TCP asks every role for scram-sha-256 once the superuser has a password.
  PgServerOptions so, to;
  so.major = 15;
  so.superuser_password = "SourceSecret";
  to.major = 17;
  to.superuser_password = "TargetSecret";
  auto source = PgServer::Start(so);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto target = PgServer::Start(to);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  std::string dir = MakeTempDir("pgbaton-pwfile");
  std::string src_pw = PasswordFile(dir, "src.pw", "SourceSecret");
  std::string tgt_pw = PasswordFile(dir, "tgt.pw", "TargetSecret");
  std::string wrong_pw = PasswordFile(dir, "wrong.pw", "NotThePassword");

  // Without a password the servers refuse the login: the files below are what lets it in.
  CommandResult none = RunCommand({PgbatonBinary(), "preflight", "--source", Bare(**source),
                                   "--target", Bare(**target), "--json"},
                                  NoOtherPassword());
  EXPECT_EQ(none.exit_code, ExitCodeOf(ErrorCode::kAuthentication)) << none.output;

  // preflight: the flags, for both sides.
  CommandResult flags = RunCommand(
      {PgbatonBinary(), "preflight", "--source", Bare(**source), "--source-password-file", src_pw,
       "--target", Bare(**target), "--target-password-file", tgt_pw, "--json"},
      NoOtherPassword());
  size_t brace = flags.output.find('{');
  ASSERT_NE(brace, std::string::npos) << flags.output;
  auto report = nlohmann::json::parse(flags.output.substr(brace), nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << flags.output;
  EXPECT_TRUE(report["source"]["reachable"].get<bool>()) << flags.output;
  EXPECT_TRUE(report["target"]["reachable"].get<bool>()) << flags.output;
  EXPECT_FALSE(report.contains("error")) << flags.output;

  // preflight: the same through the environment; a wrong file is a refused login.
  CommandResult env = RunCommand({PgbatonBinary(), "preflight", "--source", Bare(**source),
                                  "--target", Bare(**target), "--json"},
                                 NoOtherPassword({{"PGBATON_SOURCE_PASSWORD_FILE", src_pw},
                                                  {"PGBATON_TARGET_PASSWORD_FILE", tgt_pw}}));
  EXPECT_NE(env.output.find("\"reachable\": true"), std::string::npos) << env.output;
  EXPECT_EQ(env.output.find("\"error\""), std::string::npos) << env.output;
  CommandResult wrong = RunCommand(
      {PgbatonBinary(), "preflight", "--source", Bare(**source), "--source-password-file", src_pw,
       "--target", Bare(**target), "--target-password-file", wrong_pw, "--json"},
      NoOtherPassword());
  EXPECT_EQ(wrong.exit_code, ExitCodeOf(ErrorCode::kAuthentication)) << wrong.output;
  EXPECT_EQ(wrong.output.find("NotThePassword"), std::string::npos) << wrong.output;

  // apply logs in to the target with --target-password-file, and only then finds no queue (it
  // checks the target before it opens the queue): not_found, where a wrong file is refused.
  std::string missing_queue = dir + "/no-queue";
  CommandResult apply = RunCommand({PgbatonBinary(), "apply", "--target", Bare(**target),
                                    "--target-password-file", tgt_pw, "--queue-dir", missing_queue},
                                   NoOtherPassword());
  EXPECT_EQ(apply.exit_code, ExitCodeOf(ErrorCode::kNotFound)) << apply.output;
  EXPECT_NE(apply.output.find("does not exist"), std::string::npos) << apply.output;
  CommandResult apply_wrong =
      RunCommand({PgbatonBinary(), "apply", "--target", Bare(**target), "--target-password-file",
                  wrong_pw, "--queue-dir", missing_queue},
                 NoOtherPassword());
  EXPECT_EQ(apply_wrong.exit_code, ExitCodeOf(ErrorCode::kAuthentication)) << apply_wrong.output;
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::testing
