// The error-code reference must list every code of the catalogue with its exit code and name.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "common/error_code.h"

namespace pgbaton {
namespace {

std::string ReadDoc(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ErrorCodesDoc, EveryCodeIsDocumentedWithItsExitCode) {
  std::string doc = ReadDoc(std::string(PGBATON_DOCS_DIR) + "/reference/errors.md");
  ASSERT_FALSE(doc.empty());
  for (ErrorCode code : AllErrorCodes()) {
    std::string row = "| " + std::to_string(ExitCodeOf(code)) + " | `" +
                      std::string(ErrorCodeName(code)) + "` |";
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/reference/errors.md lacks: " << row;
  }
}

TEST(ErrorCodesDoc, NamesAndExitCodesAreUnique) {
  std::set<int> exits;
  std::set<std::string_view> names;
  for (ErrorCode code : AllErrorCodes()) {
    EXPECT_TRUE(exits.insert(ExitCodeOf(code)).second) << ExitCodeOf(code);
    EXPECT_TRUE(names.insert(ErrorCodeName(code)).second) << ErrorCodeName(code);
    EXPECT_NE(ErrorCodeName(code), "unknown");
    EXPECT_LT(ExitCodeOf(code), 126) << "exit codes 126+ mean something else to shells";
  }
}

}  // namespace
}  // namespace pgbaton
