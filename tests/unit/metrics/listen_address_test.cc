// --metrics-addr parsing and the loopback check.
#include <gtest/gtest.h>

#include "tools/metrics/metrics_server.h"

namespace pgbaton::tools {
namespace {

TEST(ListenAddressTest, Forms) {
  struct Form {
    const char* text;
    const char* host;
    int port;
  };
  for (const Form& f : {Form{"127.0.0.1:9187", "127.0.0.1", 9187}, Form{":9187", "127.0.0.1", 9187},
                        Form{"[::1]:80", "::1", 80}, Form{"localhost:0", "localhost", 0}}) {
    auto a = ParseListenAddress(f.text);
    ASSERT_TRUE(a.ok()) << f.text << ": " << a.status().ToString();
    EXPECT_EQ(a->host, f.host) << f.text;
    EXPECT_EQ(a->port, f.port) << f.text;
  }
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
