#include "applier/ddl_record.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace pgbaton::applier {

namespace {

using Json = nlohmann::json;

bool IdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// One lexical token of a query string, as much as splitting and keyword checks need.
struct Token {
  enum class Kind { kWord, kQuoted, kOther, kSemicolon };
  Kind kind;
  size_t begin, end;  // [begin, end) in the text
};

// Tokens of `sql`, skipping whitespace and comments. Strings ('...', E'...' with backslash
// escapes, $tag$...$tag$) and quoted identifiers are one token each. An unterminated one runs to
// the end of the text.
std::vector<Token> Tokenize(std::string_view sql) {
  std::vector<Token> out;
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;  // block comments nest in PostgreSQL
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '\'' || ((c == 'E' || c == 'e') && i + 1 < n && sql[i + 1] == '\'' &&
                             (i == 0 || !IdentChar(sql[i - 1])))) {
      const bool escapes = c != '\'';
      size_t b = i;
      i += escapes ? 2 : 1;
      while (i < n) {
        if (escapes && sql[i] == '\\') {
          i += 2;
        } else if (sql[i] == '\'') {
          if (i + 1 < n && sql[i + 1] == '\'') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      out.push_back({Token::Kind::kQuoted, b, std::min(i, n)});
    } else if (c == '"') {
      size_t b = i++;
      while (i < n) {
        if (sql[i] == '"') {
          if (i + 1 < n && sql[i + 1] == '"') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      out.push_back({Token::Kind::kQuoted, b, std::min(i, n)});
    } else if (c == '$' && (i == 0 || !IdentChar(sql[i - 1]))) {
      // $tag$ ... $tag$ (tag empty or an identifier not starting with a digit); $1 is a parameter.
      size_t j = i + 1;
      while (j < n && IdentChar(sql[j]) && sql[j] != '$') ++j;
      bool tag_ok = j < n && sql[j] == '$' &&
                    (j == i + 1 || !std::isdigit(static_cast<unsigned char>(sql[i + 1])));
      if (!tag_ok) {
        size_t b = i++;
        while (i < n && IdentChar(sql[i])) ++i;
        out.push_back({Token::Kind::kOther, b, i});
        continue;
      }
      std::string_view tag = sql.substr(i, j - i + 1);
      size_t close = sql.find(tag, j + 1);
      size_t end = close == std::string_view::npos ? n : close + tag.size();
      out.push_back({Token::Kind::kQuoted, i, end});
      i = end;
    } else if (c == ';') {
      out.push_back({Token::Kind::kSemicolon, i, i + 1});
      ++i;
    } else if (IdentChar(c)) {
      size_t b = i;
      while (i < n && IdentChar(sql[i])) ++i;
      out.push_back({Token::Kind::kWord, b, i});
    } else {
      out.push_back({Token::Kind::kOther, i, i + 1});
      ++i;
    }
  }
  return out;
}

std::string Upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string FirstWord(std::string_view s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return "";
  size_t e = s.find(' ', b);
  return Upper(s.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
}

Status Corrupt(const std::string& what) {
  return Status::Error(ErrorCode::kQueueCorrupt, fmt::format("ddl record: {}", what),
                       "the record was not written by pgbaton's event trigger");
}

Status NotReplayable(const DdlRecord& r, const std::string& why) {
  return Status::Error(
      ErrorCode::kSchemaChanged,
      fmt::format("{} cannot be replayed by itself: {}: {}", r.tag, why, r.command),
      "apply the equivalent of this DDL on the target by hand, then run again with "
      "--skip-ddl LSN (the commit LSN named here)");
}

}  // namespace

std::string EncodeDdlRecord(const DdlRecord& r) {
  Json objects = Json::array();
  for (const auto& o : r.objects) {
    Json j = {{"type", o.type}, {"identity", o.identity}, {"schema", o.schema}};
    if (!o.relation.empty()) j["relation"] = o.relation;
    objects.push_back(std::move(j));
  }
  Json j = {{"v", r.version},       {"tag", r.tag},
            {"command", r.command}, {"search_path", r.search_path},
            {"role", r.role},       {"objects", std::move(objects)}};
  if (!r.create_table.empty()) j["create"] = r.create_table;
  return j.dump();
}

Result<DdlRecord> DecodeDdlRecord(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt("not a JSON object");
  DdlRecord r;
  auto str = [&](const char* key, std::string* out, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      return required ? Corrupt(fmt::format("no \"{}\"", key)) : Status::Ok();
    }
    if (!it->is_string()) return Corrupt(fmt::format("\"{}\" is not a string", key));
    *out = it->get<std::string>();
    return Status::Ok();
  };
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) return Corrupt("no version (\"v\")");
  r.version = v->get<int>();
  if (r.version > kDdlRecordVersion) {
    return Status::Error(ErrorCode::kQueueFormat,
                         fmt::format("ddl record version {} is newer than this build reads ({})",
                                     r.version, kDdlRecordVersion),
                         "run the applier of the pgbaton version that installed the trigger");
  }
  PGB_RETURN_IF_ERROR(str("tag", &r.tag, true));
  PGB_RETURN_IF_ERROR(str("command", &r.command, true));
  PGB_RETURN_IF_ERROR(str("search_path", &r.search_path, false));
  PGB_RETURN_IF_ERROR(str("role", &r.role, false));
  PGB_RETURN_IF_ERROR(str("create", &r.create_table, false));
  auto objs = j.find("objects");
  if (objs != j.end() && !objs->is_null()) {
    if (!objs->is_array()) return Corrupt("\"objects\" is not an array");
    for (const auto& o : *objs) {
      if (!o.is_object()) return Corrupt("an object is not a JSON object");
      DdlObject d;
      auto get = [&](const char* key) {
        auto it = o.find(key);
        return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      d.type = get("type");
      d.identity = get("identity");
      d.schema = get("schema");
      d.relation = get("relation");
      r.objects.push_back(std::move(d));
    }
  }
  return r;
}

std::vector<std::string> SplitStatements(std::string_view sql) {
  std::vector<std::string> out;
  std::vector<Token> tokens = Tokenize(sql);
  size_t first = 0;  // first token of the current statement
  auto flush = [&](size_t end_token) {
    if (end_token > first) {
      size_t b = tokens[first].begin, e = tokens[end_token - 1].end;
      out.emplace_back(sql.substr(b, e - b));
    }
  };
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t].kind != Token::Kind::kSemicolon) continue;
    flush(t);
    first = t + 1;
  }
  flush(tokens.size());
  return out;
}

Result<std::string> ReplayStatement(const DdlRecord& r) {
  if (r.tag == "CREATE TABLE AS" || r.tag == "SELECT INTO") {
    if (!r.create_table.empty()) return r.create_table;
    // CREATE TABLE IF NOT EXISTS ... AS on a table that existed: nothing was created.
  }
  std::vector<std::string> statements = SplitStatements(r.command);
  if (statements.size() != 1) {
    return NotReplayable(r, fmt::format("its query string holds {} statements", statements.size()));
  }
  std::string stmt = statements[0];
  std::vector<Token> tokens = Tokenize(stmt);
  std::string first =
      tokens.empty() || tokens[0].kind != Token::Kind::kWord
          ? std::string()
          : Upper(std::string_view(stmt).substr(tokens[0].begin, tokens[0].end - tokens[0].begin));
  // "SELECT INTO" starts with SELECT, "CREATE TABLE AS" with CREATE; WITH ... SELECT INTO too.
  std::string want = FirstWord(r.tag);
  bool matches = first == want || (r.tag == "SELECT INTO" && first == "WITH");
  if (!matches) {
    return NotReplayable(r, "it ran inside a function, a DO block or a prepared statement");
  }
  const bool concurrent_kind = r.tag == "CREATE INDEX" || r.tag == "DROP INDEX" ||
                               r.tag == "REINDEX" || r.tag == "ALTER TABLE";
  if (!concurrent_kind) return stmt;
  std::string out;
  size_t at = 0;
  for (const Token& t : tokens) {
    if (t.kind != Token::Kind::kWord ||
        Upper(std::string_view(stmt).substr(t.begin, t.end - t.begin)) != "CONCURRENTLY") {
      continue;
    }
    out += stmt.substr(at, t.begin - at);
    at = t.end;
    while (at < stmt.size() && stmt[at] == ' ') ++at;
  }
  out += stmt.substr(at);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool OnlyInternalObjects(const DdlRecord& r) {
  if (r.objects.empty()) return false;
  return std::all_of(r.objects.begin(), r.objects.end(), [](const DdlObject& o) {
    if (o.schema == kDdlLogSchema || o.schema.rfind("pg_temp", 0) == 0) return true;
    return o.type == "schema" && o.identity == kDdlLogSchema;
  });
}

}  // namespace pgbaton::applier
