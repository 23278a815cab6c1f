#include "common/sql_ident.h"

#include <fmt/format.h>

#include <vector>

namespace pgbaton {

std::string QuoteIdent(std::string_view ident) {
  std::string out;
  out.reserve(ident.size() + 2);
  out += '"';
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteQualified(std::string_view schema, std::string_view name) {
  return QuoteIdent(schema) + "." + QuoteIdent(name);
}

Result<QualifiedName> ParseQualifiedName(std::string_view text, std::string_view default_schema,
                                         std::string_view what) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      if (quoted && i + 1 < text.size() && text[i + 1] == '"') {
        parts.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == '.' && !quoted) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  if (quoted || parts.size() > 2 || parts.back().empty() || parts.front().empty()) {
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("{}: invalid table name \"{}\"", what, text),
                         "write schema.table, e.g. public.accounts; double-quote a part that "
                         "holds a dot, a space or capitals: \"Shop Data\".\"Orders\"");
  }
  if (parts.size() == 1) return QualifiedName{std::string(default_schema), parts[0]};
  return QualifiedName{parts[0], parts[1]};
}

}  // namespace pgbaton
