// Masking of connection strings and free text: whatever the shape of the input, the password
// never survives, while the rest stays readable.
#include "common/conninfo.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <string>
#include <vector>

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

// One argv element, the same with its password bytes overwritten, and the part of it libpq reads
// as a conninfo (after a flag prefix such as "--source=" or "pgbouncer:"; "" for no conninfo).
struct ArgvCase {
  std::string in;
  std::string want;
  std::string conninfo_prefix;
};

std::vector<ArgvCase> ArgvCases() {
  return {
      // key=value
      {"host=h password=s3cr3tPW dbname=d", "host=h password=******** dbname=d", ""},
      {"password=s3cr3tPW", "password=********", ""},
      {"host=h password = s3cr3tPW user=u", "host=h password = ******** user=u", ""},
      {"host=h password='se cret PW' user=u", "host=h password='**********' user=u", ""},
      {R"(host=h password='s3\'cr\\et' user=u)", R"(host=h password='**********' user=u)", ""},
      {R"(host=h password=s3\ cr3t user=u)", R"(host=h password=******** user=u)", ""},
      {"host=h password='s3cr 3t", "host=h password='*******", ""},  // unterminated: to the end
      {"host=h sslpassword=keyPW password=s3cr3tPW", "host=h sslpassword=***** password=********",
       ""},
      // URIs
      {"postgresql://u:s3cr3tPW@h:5432/db", "postgresql://u:********@h:5432/db", ""},
      {"postgres://u:s3cr%40t@h/db?sslmode=disable", "postgres://u:********@h/db?sslmode=disable",
       ""},
      {"postgresql://u@h/db?password=s3cr3tPW&sslmode=disable",
       "postgresql://u@h/db?password=********&sslmode=disable", ""},
      {"postgresql://h/db?sslmode=disable&password=s3cr3tPW",
       "postgresql://h/db?sslmode=disable&password=********", ""},
      {"postgresql://u:pw1@h/db?password=pw2", "postgresql://u:***@h/db?password=***", ""},
      {"postgresql://u:p%3Aw@h1:5432,h2:5433/db", "postgresql://u:*****@h1:5432,h2:5433/db", ""},
      // --flag=value in one element, and flags whose value holds a conninfo after a prefix
      {"--source=host=h password=s3cr3tPW", "--source=host=h password=********", "--source="},
      {"--target=postgresql://u:s3cr3tPW@h/db", "--target=postgresql://u:********@h/db",
       "--target="},
      {"pgbouncer:host=h port=6432 user=pgbouncer password=s3cr3tPW dbname=pgbouncer",
       "pgbouncer:host=h port=6432 user=pgbouncer password=******** dbname=pgbouncer",
       "pgbouncer:"},
      {"--fence=pgbouncer:postgresql://admin:s3cr3tPW@h:6432/pgbouncer",
       "--fence=pgbouncer:postgresql://admin:********@h:6432/pgbouncer", "--fence=pgbouncer:"},
  };
}

// What libpq reads as the password of `conninfo` ("" when none or unparsable).
std::string LibpqPassword(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  std::string out;
  for (PQconninfoOption* o = opts; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "password" && o->val != nullptr) out = o->val;
  }
  if (opts != nullptr) PQconninfoFree(opts);
  return out;
}

TEST(ScrubPasswordsInPlaceTest, OverwritesEveryPasswordShapeAndNothingElse) {
  for (const ArgvCase& c : ArgvCases()) {
    std::string buf = c.in;
    size_t masked = ScrubPasswordsInPlace(buf.data());
    EXPECT_EQ(buf, c.want) << "input: " << c.in;
    EXPECT_EQ(buf.size(), c.in.size()) << "the argument's length must not change: " << c.in;
    EXPECT_EQ(masked, static_cast<size_t>(std::count(c.want.begin(), c.want.end(), '*'))) << c.in;
    // The cases are real: libpq reads a password from the input, and after scrubbing whatever it
    // reads as a password (if anything) is stars only.
    std::string conninfo = c.in.substr(c.conninfo_prefix.size());
    if (c.in.find("'s3cr 3t") == std::string::npos) {  // an unterminated quote: libpq refuses it
      EXPECT_FALSE(LibpqPassword(conninfo).empty()) << "libpq reads no password in " << c.in;
    }
    std::string after = LibpqPassword(buf.substr(c.conninfo_prefix.size()));
    EXPECT_EQ(after.find_first_not_of('*'), std::string::npos)
        << "libpq still reads password \"" << after << "\" in " << buf;
  }
}

TEST(ScrubPasswordsInPlaceTest, LeavesArgumentsWithoutPasswordsAlone) {
  for (std::string in : {"run", "--queue-dir", "/tmp/q", "host=h dbname=d user=u",
                         "--source-password-file=/etc/pgbaton/pw", "--source-password-file",
                         "postgresql://h:5432/db", "postgresql://u@h:5432/db?sslmode=require",
                         "roles:app_rw,app_ro", "command:psql -c 'select 1'", "public.*", "",
                         "password", "no password given", "--password"}) {
    std::string buf = in;
    EXPECT_EQ(ScrubPasswordsInPlace(buf.data()), 0u) << in;
    EXPECT_EQ(buf, in);
  }
  EXPECT_EQ(ScrubPasswordsInPlace(nullptr), 0u);
}

TEST(ScrubPasswordsInPlaceTest, AlreadyScrubbedArgumentCountsNothing) {
  std::string buf = "host=h password=s3cr3tPW";
  EXPECT_EQ(ScrubPasswordsInPlace(buf.data()), 8u);
  EXPECT_EQ(ScrubPasswordsInPlace(buf.data()), 0u);
  EXPECT_EQ(buf, "host=h password=********");
}

TEST(SeparatePasswordTest, TakesThePasswordOutOfEveryForm) {
  for (std::string in : {std::string("host=h port=5 user=u password=") + kSecret + " dbname=d",
                         std::string("host=h password='") + kSecret + " x' dbname=d",
                         std::string("postgresql://u:") + kSecret + "@h:5/d",
                         std::string("postgresql://u@h:5/d?password=") + kSecret}) {
    auto r = SeparatePassword(in);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->password.has_value()) << in;
    EXPECT_EQ(r->password->substr(0, 8), kSecret);
    ExpectNoSecret(r->conninfo, in);
    // The rest still points at the same place.
    EXPECT_EQ(DescribeConninfo(r->conninfo), DescribeConninfo(in)) << r->conninfo;
    EXPECT_EQ(LibpqPassword(r->conninfo), "");
  }
  auto none = SeparatePassword("host=h dbname=d");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->password.has_value());
  EXPECT_EQ(none->conninfo, "host=h dbname=d");
  auto bad = SeparatePassword(std::string("host=h password='") + kSecret);
  ASSERT_FALSE(bad.ok());
  ExpectNoSecret(bad.status().message(), "unterminated");
}

TEST(DescribeConninfoTest, NeverShowsPassword) {
  std::string in = std::string("host=db1 port=6000 dbname=app user=u password=") + kSecret;
  std::string out = DescribeConninfo(in);
  EXPECT_EQ(out, "db1:6000/app");
  std::string uri = std::string("postgresql://u:") + kSecret + "@db2:7000/shop";
  EXPECT_EQ(DescribeConninfo(uri), "db2:7000/shop");
}

TEST(WithDatabaseTest, ReplacesTheDatabaseAndKeepsTheRest) {
  for (const std::string& in :
       {std::string("host=db1 port=6000 dbname=postgres user=u password=") + kSecret,
        std::string("postgresql://u:") + kSecret + "@db1:6000/postgres",
        std::string("host=db1 port=6000 user=u password=") + kSecret}) {
    for (const std::string& db : {std::string("app"), std::string("Sales \"Q1\" db"),
                                  std::string("it's"), std::string("a\\b")}) {
      auto r = WithDatabase(in, db);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(DescribeConninfo(*r), "db1:6000/" + db) << MaskConninfo(*r);
      EXPECT_EQ(LibpqPassword(*r).substr(0, 8), kSecret);
    }
  }
  auto bad = WithDatabase(std::string("host=h password='") + kSecret, "app");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kUsage);
  ExpectNoSecret(bad.status().message(), "unterminated");
}

}  // namespace
}  // namespace pgbaton
