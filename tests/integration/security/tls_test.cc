// TLS to both clusters: verify-full against a test CA succeeds, a wrong CA and a server without TLS
// fail with a clear connection error naming the side.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error_code.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

std::string VerifyFull(const PgServer& s, const std::string& ca) {
  return s.Conninfo() + " sslmode=verify-full sslrootcert=" + ca;
}

TEST(Tls, VerifyFullAgainstTheTestCaConnectsBothSides) {
  auto src = StartServer(15, {.ssl = true});
  auto tgt = StartServer(17, {.ssl = true});
  ASSERT_TRUE(src && tgt);
  // The servers accept only TLS on TCP: a plain connection is refused, so success below means TLS.
  auto plain = PgConn::Connect(src->Conninfo() + " sslmode=disable");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("no pg_hba.conf entry"), std::string::npos)
      << plain.status().message();

  ProcessOptions quiet;
  quiet.stderr_path = "/dev/null";
  CommandResult r =
      RunCommand({PgbatonBinary(), "preflight", "--json", "--source",
                  VerifyFull(*src, src->ca_file()), "--target", VerifyFull(*tgt, tgt->ca_file())},
                 quiet);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["ready"], true);

  // The session really is encrypted.
  auto conn = PgConn::Connect(VerifyFull(*src, src->ca_file()));
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto ssl = conn->QueryValue("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
  ASSERT_TRUE(ssl.ok());
  EXPECT_EQ(*ssl, "t");
}

TEST(Tls, WrongCertificateAuthorityFailsNamingTheSide) {
  auto src = StartServer(15, {.ssl = true});
  auto tgt = StartServer(17, {.ssl = true});
  ASSERT_TRUE(src && tgt);
  // The target's CA did not sign the source's certificate.
  CommandResult r =
      RunCommand({PgbatonBinary(), "preflight", "--source", VerifyFull(*src, tgt->ca_file()),
                  "--target", VerifyFull(*tgt, tgt->ca_file())});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kConnection)) << r.output;
  EXPECT_NE(r.output.find("cannot connect to source"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("certificate verify failed"), std::string::npos) << r.output;
}

TEST(Tls, RequireAgainstAServerWithoutTlsFailsClearly) {
  auto src = StartServer(15);
  auto tgt = StartServer(17);
  ASSERT_TRUE(src && tgt);
  CommandResult r = RunCommand({PgbatonBinary(), "preflight", "--source",
                                src->Conninfo() + " sslmode=require", "--target", tgt->Conninfo()});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kConnection)) << r.output;
  EXPECT_NE(r.output.find("cannot connect to source"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("server does not support SSL"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pgbaton::testing
