#include "common/conninfo.h"

#include <libpq-fe.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <regex>
#include <utility>
#include <vector>

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

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool EqualsIgnoreCase(std::string_view s, size_t at, std::string_view word) {
  if (at + word.size() > s.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[at + i])) != word[i]) return false;
  }
  return true;
}

// [begin, end) ranges of `s` that libpq could read as a password (see ScrubPasswordsInPlace).
std::vector<std::pair<size_t, size_t>> PasswordSpans(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> spans;
  constexpr std::string_view kWord = "password";
  for (size_t i = 0; i + kWord.size() <= s.size(); ++i) {
    if (!EqualsIgnoreCase(s, i, kWord)) continue;
    size_t j = i + kWord.size();
    while (j < s.size() && IsSpace(s[j])) ++j;
    if (j >= s.size() || s[j] != '=') continue;
    ++j;
    // A URI parameter (?password= or &password=, also sslpassword) ends at the next '&'.
    size_t k = i;
    if (k >= 3 && EqualsIgnoreCase(s, k - 3, "ssl")) k -= 3;
    const bool uri_param = k > 0 && (s[k - 1] == '?' || s[k - 1] == '&');
    size_t end = j;
    if (uri_param) {
      while (end < s.size() && s[end] != '&' && s[end] != '#' && !IsSpace(s[end])) ++end;
    } else {
      // Key/value form: libpq skips blanks after '=', then reads a quoted or a bare value; both
      // take backslash escapes. An unterminated quote runs to the end.
      while (j < s.size() && IsSpace(s[j])) ++j;
      const bool quoted = j < s.size() && s[j] == '\'';
      if (quoted) ++j;
      end = j;
      while (end < s.size() && (quoted ? s[end] != '\'' : !IsSpace(s[end]))) {
        end += (s[end] == '\\' && end + 1 < s.size()) ? 2 : 1;
      }
    }
    spans.emplace_back(j, end);
    i = end - 1;  // end > i: the next keyword starts after this value
  }
  // URI user info: "scheme://user:SECRET@host". The user info ends at the last '@' of the
  // word, so a password holding '@', '/' or ':' is masked whole (more than libpq would read).
  for (size_t at = s.find("://"); at != std::string_view::npos; at = s.find("://", at + 3)) {
    size_t start = at + 3;
    size_t word_end = start;
    while (word_end < s.size() && !IsSpace(s[word_end])) ++word_end;
    size_t last_at = s.substr(start, word_end - start).rfind('@');
    if (last_at == std::string_view::npos) continue;
    last_at += start;
    size_t colon = s.substr(start, last_at - start).find(':');
    if (colon == std::string_view::npos) continue;
    spans.emplace_back(start + colon + 1, last_at);
  }
  return spans;
}

}  // namespace

size_t ScrubPasswordsInPlace(char* arg) {
  if (arg == nullptr) return 0;
  std::string_view s(arg, std::strlen(arg));
  size_t masked = 0;
  for (auto [begin, end] : PasswordSpans(s)) {
    for (size_t i = begin; i < end; ++i) {
      if (arg[i] != '*') ++masked;
      arg[i] = '*';
    }
  }
  return masked;
}

Result<ConninfoAndPassword> SeparatePassword(std::string_view conninfo) {
  ConninfoAndPassword out;
  out.conninfo = std::string(conninfo);
  char* err = nullptr;
  Options opts(PQconninfoParse(out.conninfo.c_str(), &err));
  if (!opts) {
    std::string why = err != nullptr ? err : "out of memory";
    if (err != nullptr) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    // Without a password there is nothing to hide: the child reports the error itself.
    std::string copy = out.conninfo;
    if (ScrubPasswordsInPlace(copy.data()) == 0) return out;
    return Status::Error(ErrorCode::kUsage,
                         "invalid connection string " + ScrubSecrets(conninfo) + ": " + why,
                         "write it as key=value pairs or as a postgresql:// URI");
  }
  std::string rest;
  for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::string_view(o->keyword) == "password") {
      out.password = o->val;
      continue;
    }
    if (!rest.empty()) rest += ' ';
    rest += o->keyword;
    rest += '=';
    // Always quoted: an empty value must stay a value.
    rest += '\'';
    for (const char* c = o->val; *c != '\0'; ++c) {
      if (*c == '\'' || *c == '\\') rest += '\\';
      rest += *c;
    }
    rest += '\'';
  }
  if (out.password) out.conninfo = rest;
  return out;
}

Result<std::string> WithDatabase(std::string_view conninfo, std::string_view dbname) {
  char* err = nullptr;
  Options opts(PQconninfoParse(std::string(conninfo).c_str(), &err));
  if (!opts) {
    std::string why = err != nullptr ? err : "out of memory";
    if (err != nullptr) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::Error(ErrorCode::kUsage,
                         "invalid connection string " + ScrubSecrets(conninfo) + ": " + why,
                         "write it as key=value pairs or as a postgresql:// URI");
  }
  std::string out;
  for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "dbname") continue;
    out += std::string(o->keyword) + "=" + QuoteValue(o->val) + " ";
  }
  return out + "dbname=" + QuoteValue(dbname);
}

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
