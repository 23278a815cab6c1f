// Masking of connection strings and free text: whatever the shape of the input, the password
// never survives, while the rest stays readable.
#include "common/conninfo.h"

#include <gtest/gtest.h>

#include <string>

namespace pgbaton {
namespace {

// The secret used in every case; no fragment of it (3+ characters) may survive masking.
constexpr const char* kSecret = "s3cr3tPW";

void ExpectNoSecret(const std::string& out, const std::string& in) {
  std::string secret = kSecret;
  for (size_t len = 3; len <= secret.size(); ++len) {
    for (size_t i = 0; i + len <= secret.size(); ++i) {
      ASSERT_EQ(out.find(secret.substr(i, len)), std::string::npos)
          << "fragment \"" << secret.substr(i, len) << "\" of the password survived in \"" << out
          << "\" (input \"" << in << "\")";
    }
  }
}

TEST(MaskConninfoTest, KeyValueForm) {
  std::string in = std::string("host=db1 port=5433 user=app password=") + kSecret + " dbname=x";
  std::string out = MaskConninfo(in);
  ExpectNoSecret(out, in);
  EXPECT_NE(out.find("host=db1"), std::string::npos) << out;
  EXPECT_NE(out.find("port=5433"), std::string::npos) << out;
  EXPECT_NE(out.find("dbname=x"), std::string::npos) << out;
  EXPECT_NE(out.find("password=*****"), std::string::npos) << out;
}

TEST(MaskConninfoTest, QuotedValuesWithSpacesAndEscapes) {
  for (std::string in : {
           std::string("host=db1 password='") + kSecret + " with space'",
           std::string("host=db1 password = '") + kSecret + "\\' quote'",
           std::string("password='") + kSecret + "\\\\back' host=x",
           std::string("sslpassword=") + kSecret + " host=x",
       }) {
    std::string out = MaskConninfo(in);
    ExpectNoSecret(out, in);
    EXPECT_EQ(out.find("with space"), std::string::npos) << out;
  }
}

TEST(MaskConninfoTest, Uris) {
  for (std::string in : {
           std::string("postgresql://app:") + kSecret + "@db1:5432/x",
           std::string("postgres://app:") + kSecret + "@db1/x?sslmode=require",
           std::string("postgresql://app@db1/x?password=") + kSecret,
           std::string("postgresql://app@db1/x?sslmode=disable&password=") + kSecret + "&a=b",
           std::string("postgresql://app:") + kSecret + "@h1:5432,h2:5433/x",
       }) {
    std::string out = MaskConninfo(in);
    ExpectNoSecret(out, in);
    EXPECT_NE(out.find("*****"), std::string::npos) << out;
  }
  std::string out = MaskConninfo(std::string("postgresql://app:") + kSecret + "@db1:5432/x");
  EXPECT_NE(out.find("db1"), std::string::npos) << out;
}

TEST(MaskConninfoTest, MalformedStringsAreMaskedByPattern) {
  for (std::string in : {
           std::string("host=db1 password='") + kSecret,                // unterminated quote
           std::string("host=db1 password='") + kSecret + " more",      // unterminated, with space
           std::string("host=db1 bogus password=") + kSecret,           // "bogus" has no '='
           std::string("nokey=1 password=") + kSecret,                  // unknown keyword
           std::string("PASSWORD=") + kSecret + " host",                // upper case
           std::string("postgresql://app:") + kSecret + "@db1:port/x",  // bad port
           std::string("postgresql://app:") + kSecret + "@",
           std::string("host=db1 password='pre ") + kSecret,           // secret after a space
           std::string("postgresql://app:pre ") + kSecret + "@db1/x",  // space in a URI password
       }) {
    std::string out = MaskConninfo(in);
    ExpectNoSecret(out, in);
  }
}

TEST(MaskConninfoTest, NoPasswordLeavesValuesIntact) {
  std::string out = MaskConninfo("host=db1 port=5432 dbname='my db'");
  EXPECT_NE(out.find("host=db1"), std::string::npos) << out;
  EXPECT_NE(out.find("'my db'"), std::string::npos) << out;
  EXPECT_EQ(out.find("*****"), std::string::npos) << out;
}

TEST(ScrubSecretsTest, FreeText) {
  for (std::string in : {
           std::string("could not connect: host=x password=") + kSecret + " failed",
           std::string("error in \"postgresql://u:") + kSecret + "@h/db\"",
           std::string("password = ") + kSecret,
           std::string("password='") + kSecret + "' and more",
           std::string("sslpassword=") + kSecret,
       }) {
    std::string out = ScrubSecrets(in);
    ExpectNoSecret(out, in);
  }
  EXPECT_EQ(ScrubSecrets("nothing secret here"), "nothing secret here");
  EXPECT_EQ(ScrubSecrets("no password given"), "no password given");
  EXPECT_EQ(ScrubSecrets("source postgresql://db1:5432/app is down"),
            "source postgresql://db1:5432/app is down");
}

TEST(DescribeConninfoTest, NeverShowsPassword) {
  std::string in = std::string("host=db1 port=6000 dbname=app user=u password=") + kSecret;
  std::string out = DescribeConninfo(in);
  EXPECT_EQ(out, "db1:6000/app");
  std::string uri = std::string("postgresql://u:") + kSecret + "@db2:7000/shop";
  EXPECT_EQ(DescribeConninfo(uri), "db2:7000/shop");
}

}  // namespace
}  // namespace pgbaton
