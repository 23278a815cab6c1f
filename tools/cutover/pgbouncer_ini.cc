#include "tools/cutover/pgbouncer_ini.h"

#include <fmt/format.h>

#include <cctype>
#include <sstream>

namespace pgbaton::tools::cutover {

namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Splits `ini` into lines (keeping their terminators) and calls `fn(line_index, key, value)` for
// each "key = value" line of the [databases] section.
struct Line {
  std::string text;     // without the terminator
  std::string newline;  // "\n", "\r\n" or ""
};

std::vector<Line> SplitLines(const std::string& ini) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < ini.size()) {
    size_t nl = ini.find('\n', pos);
    Line l;
    if (nl == std::string::npos) {
      l.text = ini.substr(pos);
      pos = ini.size();
    } else {
      l.text = ini.substr(pos, nl - pos);
      l.newline = "\n";
      pos = nl + 1;
    }
    if (!l.text.empty() && l.text.back() == '\r') {
      l.text.pop_back();
      l.newline = "\r" + l.newline;
    }
    out.push_back(std::move(l));
  }
  return out;
}

// Index of the line holding `db`'s entry in [databases], or -1; `value` gets the entry.
int FindLine(const std::vector<Line>& lines, const std::string& db, std::string* value) {
  bool in_databases = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string t = Trim(lines[i].text);
    if (t.empty() || t[0] == ';' || t[0] == '#') continue;
    if (t[0] == '[') {
      in_databases = Lower(t) == "[databases]";
      continue;
    }
    if (!in_databases) continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(t.substr(0, eq));
    if (key.size() >= 2 && key.front() == '"' && key.back() == '"') {
      key = key.substr(1, key.size() - 2);
    }
    if (key == db) {
      *value = Trim(t.substr(eq + 1));
      return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ParseBouncerEntry(const std::string& s) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i >= s.size()) break;
    size_t eq = s.find('=', i);
    if (eq == std::string::npos) {
      return Status::Error(
          ErrorCode::kUsage,
          fmt::format("pgbouncer database entry \"{}\": \"{}\" has no value", s, s.substr(i)));
    }
    std::string key = Trim(s.substr(i, eq - i));
    i = eq + 1;
    while (i < s.size() && s[i] == ' ') ++i;
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '\'') {
          if (i + 1 < s.size() && s[i + 1] == '\'') {
            value += '\'';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        value += s[i++];
      }
      if (!closed) {
        return Status::Error(
            ErrorCode::kUsage,
            fmt::format("pgbouncer database entry: unterminated quote after {}=", key));
      }
    } else {
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) value += s[i++];
    }
    out.emplace_back(key, value);
  }
  return out;
}

std::string FormatBouncerEntry(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty()) out += ' ';
    bool quote = v.empty() || v.find_first_of(" \t'") != std::string::npos;
    if (!quote) {
      out += k + "=" + v;
      continue;
    }
    std::string q;
    for (char c : v) {
      if (c == '\'') q += '\'';
      q += c;
    }
    out += k + "='" + q + "'";
  }
  return out;
}

Result<std::string> FindBouncerEntry(const std::string& ini, const std::string& db) {
  std::string value;
  if (FindLine(SplitLines(ini), db, &value) < 0) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("pgbouncer database \"{}\" has no entry in [databases]", db),
                         "list the database by name in pgbouncer.ini (a \"*\" fallback entry "
                         "cannot be flipped)");
  }
  return value;
}

Result<std::string> RewriteBouncerEntry(const std::string& ini, const std::string& db,
                                        const std::map<std::string, std::string>& set) {
  std::vector<Line> lines = SplitLines(ini);
  std::string value;
  int idx = FindLine(lines, db, &value);
  if (idx < 0) return FindBouncerEntry(ini, db).status();
  PGB_ASSIGN_OR_RETURN(auto kv, ParseBouncerEntry(value));
  for (const auto& [k, v] : set) {
    bool found = false;
    for (auto& [ek, ev] : kv) {
      if (ek == k) {
        ev = v;
        found = true;
      }
    }
    if (!found) kv.emplace_back(k, v);
  }
  // Keep the key exactly as written (quotes, spacing before '=').
  const std::string& text = lines[idx].text;
  size_t eq = text.find('=');
  lines[idx].text = text.substr(0, eq + 1) + " " + FormatBouncerEntry(kv);
  std::string out;
  for (const Line& l : lines) out += l.text + l.newline;
  return out;
}

}  // namespace pgbaton::tools::cutover
