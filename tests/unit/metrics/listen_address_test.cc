// --metrics-addr parsing and the loopback check.
#include <gtest/gtest.h>

#include "tools/metrics/metrics_server.h"

namespace pgbaton::tools {
namespace {

TEST(ListenAddressTest, Forms) {
  auto a = ParseListenAddress("127.0.0.1:9187");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9187);
  auto b = ParseListenAddress(":9187");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "127.0.0.1");
  auto c = ParseListenAddress("[::1]:80");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 80);
  auto d = ParseListenAddress("localhost:0");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 0);
}

TEST(ListenAddressTest, Errors) {
  for (const char* bad :
       {"9187", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:abc", "::1:80", "[::1]80", "[::1"}) {
    auto r = ParseListenAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kUsage);
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
}

TEST(ListenAddressTest, Loopback) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    auto r = IsLoopbackHost(host);
    ASSERT_TRUE(r.ok()) << host << ": " << r.status().ToString();
    EXPECT_TRUE(*r) << host;
  }
  for (const char* host : {"0.0.0.0", "10.1.2.3", "::", "192.168.0.1"}) {
    auto r = IsLoopbackHost(host);
    ASSERT_TRUE(r.ok()) << host;
    EXPECT_FALSE(*r) << host;
  }
}

}  // namespace
}  // namespace pgbaton::tools
