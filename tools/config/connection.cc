#include "tools/config/connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "common/log.h"

namespace pgbaton::tools {

namespace {

std::string Quote(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

void AddConnectionOptions(CLI::App* sub, ConnectionFlags* flags, Need source, Need target) {
  if (source != Need::kNone) {
    sub->add_option("--source", flags->source,
                    "old cluster: libpq conninfo or URI (PG* variables and .pgpass apply)")
        ->required(source == Need::kRequired);
    sub->add_option("--source-password-file", flags->source_password_file,
                    "file whose first line is the source password");
  }
  if (target != Need::kNone) {
    sub->add_option("--target", flags->target,
                    "new cluster: libpq conninfo or URI (PG* variables and .pgpass apply)")
        ->required(target == Need::kRequired);
    sub->add_option("--target-password-file", flags->target_password_file,
                    "file whose first line is the target password");
  }
}

Result<std::string> ResolveConninfo(std::string_view label, const std::string& conninfo,
                                    const std::string& password_file) {
  if (conninfo.empty()) {
    return Status::Error(
        ErrorCode::kUsage, fmt::format("no {} cluster given", label),
        fmt::format("pass --{0} CONNINFO, set PGBATON_{1}, or put {0} = \"...\" in the config file",
                    label, label == "source" ? "SOURCE" : "TARGET"));
  }
  if (password_file.empty()) return conninfo;

  std::ifstream in(password_file);
  if (!in) {
    return Status::Error(ErrorCode::kIo, fmt::format("--{}-password-file \"{}\": {}", label,
                                                     password_file, std::strerror(errno)));
  }
  std::string password;
  std::getline(in, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  struct stat st {};
  if (stat(password_file.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    LogWarning(fmt::format("--{}-password-file \"{}\" is readable by group or others", label,
                           password_file),
               {{"hint", "chmod 600 " + password_file}});
  }

  // Expand URI or key=value text to keywords, then put the password in (replacing any).
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string why = err != nullptr ? err : "out of memory";
    if (err != nullptr) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("--{}: invalid connection string: {}", label, why));
  }
  std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> guard(opts, PQconninfoFree);
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "password") continue;
    out += fmt::format("{}={} ", o->keyword, Quote(o->val));
  }
  out += "password=" + Quote(password);
  return out;
}

Result<std::string> SourceConninfo(const ConnectionFlags& flags) {
  return ResolveConninfo("source", flags.source, flags.source_password_file);
}

Result<std::string> TargetConninfo(const ConnectionFlags& flags) {
  return ResolveConninfo("target", flags.target, flags.target_password_file);
}

}  // namespace pgbaton::tools
