// Config layering: flags > PGBATON_* environment > TOML file > defaults, on a CLI11 app shaped like
// pgbaton's (global options and a verb with its own).
#include "tools/config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

namespace pgbaton::tools {
namespace {

// Names the environment variables these tests set, and clears them around each test.
const char* kVars[] = {"PGBATON_SOURCE", "PGBATON_CHUNK_ROWS", "PGBATON_JSON",  "PGBATON_NAME",
                       "PGBATON_TABLES", "PGBATON_CONFIG",     "PGBATON_TARGET"};

struct Values {
  std::string name = "pgbaton";
  std::string source;
  std::string target;
  int64_t chunk_rows = 100000;
  bool json = false;
  std::vector<std::string> tables;
};

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : kVars) unsetenv(v);
  }

  // Builds the app, prepares the layer with `toml` (none when empty), parses `args`, applies.
  Status Run(const std::string& toml, std::vector<std::string> args, bool target_required = false) {
    app_ = std::make_unique<CLI::App>("test", "pgbaton");
    app_->add_option("--name", v_.name)->envname("PGBATON_NAME");
    CLI::App* verify = app_->add_subcommand("verify");
    verify->fallthrough();
    verify->add_option("--source", v_.source);
    auto* t = verify->add_option("--target", v_.target);
    if (target_required) t->required();
    verify->add_option("--chunk-rows", v_.chunk_rows);
    verify->add_flag("--json", v_.json);
    verify->add_option("--tables", v_.tables)->delimiter(',');
    app_->add_subcommand("cleanup")->add_option("--queue-dir", queue_dir_);

    ConfigLayer layer;
    Status s;
    if (toml.empty()) {
      s = layer.Prepare(app_.get(), nullptr);
    } else {
      auto file = ParseConfigText(toml, "test.toml");
      if (!file.ok()) return file.status();
      s = layer.Prepare(app_.get(), &file.value());
    }
    if (!s.ok()) return s;
    std::vector<std::string> argv = {"pgbaton"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> c;
    for (auto& a : argv) c.push_back(a.c_str());
    try {
      app_->parse(static_cast<int>(c.size()), c.data());
    } catch (const CLI::ParseError& e) {
      Status env = EnvironmentParseError(*app_, e, static_cast<int>(c.size()), c.data());
      if (!env.ok()) return env;
      return Status::Error(ErrorCode::kUsage, e.what());
    }
    return layer.Apply(app_.get());
  }

  std::unique_ptr<CLI::App> app_;
  Values v_;
  std::string queue_dir_;
};

TEST_F(ConfigTest, DefaultsWhenNothingIsGiven) {
  ASSERT_TRUE(Run("", {"verify"}).ok());
  EXPECT_EQ(v_.name, "pgbaton");
  EXPECT_EQ(v_.chunk_rows, 100000);
  EXPECT_FALSE(v_.json);
  EXPECT_EQ(v_.source, "");
}

TEST_F(ConfigTest, FileBeatsDefaultsAndSectionBeatsTopLevel) {
  Status s = Run(R"(
name = "mig1"
source = "host=top"
chunk-rows = 5
[verify]
source = "host=section"
chunk_rows = 7
json = true
tables = ["public.a", "shop.b"]
)",
                 {"verify"});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(v_.name, "mig1");
  EXPECT_EQ(v_.source, "host=section");
  EXPECT_EQ(v_.chunk_rows, 7);
  EXPECT_TRUE(v_.json);
  EXPECT_EQ(v_.tables, (std::vector<std::string>{"public.a", "shop.b"}));
}

TEST_F(ConfigTest, EnvironmentBeatsFile) {
  setenv("PGBATON_SOURCE", "host=env", 1);
  setenv("PGBATON_CHUNK_ROWS", "11", 1);
  setenv("PGBATON_NAME", "envname", 1);
  Status s =
      Run("name = \"filename\"\n[verify]\nsource = \"host=file\"\nchunk-rows = 7\n", {"verify"});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(v_.source, "host=env");
  EXPECT_EQ(v_.chunk_rows, 11);
  EXPECT_EQ(v_.name, "envname");
}

// A PGBATON_* value that does not parse is named (variable, value, flag) with a hint; the same
// mistake on the command line is CLI11's usual message about the flag.
TEST_F(ConfigTest, EnvironmentValueThatFailsToParseIsNamed) {
  setenv("PGBATON_CHUNK_ROWS", "abc", 1);
  Status s = Run("", {"verify"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUsage);
  EXPECT_NE(s.message().find("environment variable PGBATON_CHUNK_ROWS=\"abc\""), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("--chunk-rows"), std::string::npos) << s.message();
  EXPECT_NE(s.hint().find("unset PGBATON_CHUNK_ROWS"), std::string::npos) << s.hint();

  // A valid flag beats the bad variable: no error at all.
  ASSERT_TRUE(Run("", {"verify", "--chunk-rows", "5"}).ok());
  EXPECT_EQ(v_.chunk_rows, 5);
  // A bad flag is blamed on the flag, not on the variable.
  unsetenv("PGBATON_CHUNK_ROWS");
  Status flag = Run("", {"verify", "--chunk-rows", "xyz"});
  ASSERT_FALSE(flag.ok());
  EXPECT_EQ(flag.message().find("PGBATON_CHUNK_ROWS"), std::string::npos) << flag.message();
}

TEST_F(ConfigTest, FlagsBeatEnvironmentAndFile) {
  setenv("PGBATON_SOURCE", "host=env", 1);
  Status s = Run("[verify]\nsource = \"host=file\"\nchunk-rows = 7\n",
                 {"--name", "flagname", "verify", "--source", "host=flag", "--chunk-rows", "3"});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(v_.source, "host=flag");
  EXPECT_EQ(v_.chunk_rows, 3);
  EXPECT_EQ(v_.name, "flagname");
}

TEST_F(ConfigTest, EveryLongOptionGetsAnEnvironmentName) {
  ASSERT_TRUE(Run("", {"verify"}).ok());
  CLI::App* verify = app_->get_subcommand("verify");
  EXPECT_EQ(verify->get_option("--chunk-rows")->get_envname(), "PGBATON_CHUNK_ROWS");
  EXPECT_EQ(verify->get_option("--source")->get_envname(), "PGBATON_SOURCE");
  EXPECT_EQ(app_->get_option("--config")->get_envname(), "PGBATON_CONFIG");
  EXPECT_EQ(EnvNameFor("source-password-file"), "PGBATON_SOURCE_PASSWORD_FILE");
  setenv("PGBATON_JSON", "true", 1);
  setenv("PGBATON_TABLES", "a.b,c.d", 1);
  ASSERT_TRUE(Run("", {"verify"}).ok());
  EXPECT_TRUE(v_.json);
  EXPECT_EQ(v_.tables, (std::vector<std::string>{"a.b", "c.d"}));
}

TEST_F(ConfigTest, FileSatisfiesARequiredOption) {
  EXPECT_FALSE(Run("", {"verify"}, /*target_required=*/true).ok());
  Status s = Run("target = \"host=t\"\n", {"verify"}, /*target_required=*/true);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(v_.target, "host=t");
}

TEST_F(ConfigTest, UnknownKeysAndSectionsAreErrors) {
  Status s = Run("sauce = \"x\"\n", {"verify"});
  EXPECT_EQ(s.code(), ErrorCode::kUsage);
  EXPECT_NE(s.message().find("unknown key \"sauce\""), std::string::npos) << s.message();
  s = Run("[verify]\nqueue-dir = \"/q\"\n", {"verify"});  // cleanup's option, not verify's
  EXPECT_EQ(s.code(), ErrorCode::kUsage);
  EXPECT_NE(s.message().find("unknown key \"queue-dir\" in [verify]"), std::string::npos)
      << s.message();
  s = Run("queue-dir = \"/q\"\n", {"verify"});  // top level: any command's option is fine
  EXPECT_TRUE(s.ok()) << s.ToString();
  s = Run("[verfy]\nsource = \"x\"\n", {"verify"});
  EXPECT_EQ(s.code(), ErrorCode::kUsage);
  EXPECT_NE(s.message().find("unknown section [verfy]"), std::string::npos) << s.message();
}

TEST_F(ConfigTest, BadValuesNameTheKey) {
  Status s = Run("[verify]\nchunk-rows = \"many\"\n", {"verify"});
  EXPECT_EQ(s.code(), ErrorCode::kUsage);
  EXPECT_NE(s.message().find("key \"chunk-rows\""), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("test.toml"), std::string::npos) << s.message();
  s = Run("[verify]\nsource = { host = \"x\" }\n", {"verify"});
  EXPECT_EQ(s.code(), ErrorCode::kUsage) << s.ToString();
}

TEST_F(ConfigTest, SyntaxErrorsGiveLineAndColumn) {
  auto f = ParseConfigText("name = \"ok\"\nsource = \n", "bad.toml");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kUsage);
  EXPECT_NE(f.status().message().find("config file \"bad.toml\": line 2"), std::string::npos)
      << f.status().message();
}

TEST_F(ConfigTest, MissingFileIsAnIoError) {
  auto f = LoadConfigFile("/nonexistent/pgbaton.toml");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kIo);
  EXPECT_NE(f.status().message().find("/nonexistent/pgbaton.toml"), std::string::npos);
}

}  // namespace
}  // namespace pgbaton::tools

namespace pgbaton::tools {
namespace {

// [[cutover.pgbouncer]]: each table of the array arrives as one JSON object under its key.
TEST(ConfigFileTest, ArrayOfTablesGivesOneJsonObjectPerTable) {
  auto f = ParseConfigText(
      "[[cutover.pgbouncer]]\nadmin = \"host=a port=6432 dbname=pgbouncer\"\nini = \"/a.ini\"\n"
      "[[cutover.pgbouncer]]\nadmin = \"host=b\"\nflip_cmd = \"ssh b 'point \\\"$X\\\"'\"\n",
      "fleet.toml");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const auto& v = f->sections["cutover"]["pgbouncer"];
  ASSERT_EQ(v.size(), 2u);
  auto a = nlohmann::json::parse(v[0]);
  auto b = nlohmann::json::parse(v[1]);
  EXPECT_EQ(a["admin"], "host=a port=6432 dbname=pgbouncer");
  EXPECT_EQ(a["ini"], "/a.ini");
  EXPECT_EQ(b["flip_cmd"], "ssh b 'point \"$X\"'");
}

}  // namespace
}  // namespace pgbaton::tools
