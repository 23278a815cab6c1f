// Passwords from a file instead of the command line.
#include "tools/config/connection.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/conninfo.h"

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

}  // namespace
}  // namespace pgbaton::tools
