#include "common/conninfo.h"

#include <libpq-fe.h>

#include <memory>
#include <regex>

namespace pgbaton {

namespace {

constexpr const char* kMask = "*****";

bool IsSecretKeyword(std::string_view keyword) {
  return keyword == "password" || keyword == "sslpassword";
}

struct OptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using Options = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

Options Parse(std::string_view conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(std::string(conninfo).c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  return Options(opts);
}

std::string QuoteValue(std::string_view v) {
  bool needs_quotes = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '\'' || c == '\\' || c == '\t' || c == '\n') needs_quotes = true;
  }
  if (!needs_quotes) return std::string(v);
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += "'";
  return out;
}

}  // namespace

std::string ScrubSecrets(std::string_view text) {
  // An unterminated quote masks the rest of the line: the password may contain spaces.
  static const std::regex kAssign(R"((password|sslpassword)(\s*=\s*)('(\\.|[^'])*'|'.*|[^\s&]+))",
                                  std::regex::icase);
  // A URI's user info ends at the last '@' of the line, so a password with spaces is masked too.
  static const std::regex kUri(R"(([a-z]+://[^:/@\s]*):([^@\n]*)@)", std::regex::icase);
  std::string s(text);
  s = std::regex_replace(s, kAssign, std::string("$1$2") + kMask);
  s = std::regex_replace(s, kUri, std::string("$1:") + kMask + "@");
  return s;
}

std::string MaskConninfo(std::string_view conninfo) {
  Options opts = Parse(conninfo);
  if (!opts) return ScrubSecrets(conninfo);
  std::string out;
  for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (!out.empty()) out += ' ';
    out += o->keyword;
    out += '=';
    out += IsSecretKeyword(o->keyword) ? kMask : QuoteValue(o->val);
  }
  return out;
}

std::string DescribeConninfo(std::string_view conninfo) {
  Options opts = Parse(conninfo);
  std::string host, port, dbname, user;
  if (opts) {
    for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      std::string_view k = o->keyword;
      if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
      if (k == "port") port = o->val;
      if (k == "dbname") dbname = o->val;
      if (k == "user") user = o->val;
    }
  }
  auto env_or = [](const std::string& v, const char* env, const char* fallback) {
    if (!v.empty()) return v;
    const char* e = std::getenv(env);
    return std::string(e != nullptr && *e != '\0' ? e : fallback);
  };
  host = env_or(host, "PGHOST", "localhost");
  port = env_or(port, "PGPORT", "5432");
  user = env_or(user, "PGUSER", "");
  dbname = env_or(dbname, "PGDATABASE", user.empty() ? "postgres" : user.c_str());
  return host + ":" + port + "/" + dbname;
}

}  // namespace pgbaton
