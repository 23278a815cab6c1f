// Connection strings: masking for display. A password never reaches a log line, status output,
// metric label or error message: everything that shows a conninfo goes through MaskConninfo.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pgbaton {

// Returns `conninfo` (key=value form or a postgres:// URI) with every secret replaced by "*****":
// password, sslpassword, and the password part of a URI's user info. Unparsable text is masked
// by pattern, so a malformed string with a password in it is still safe to print.
std::string MaskConninfo(std::string_view conninfo);

// Scrubs anything that looks like a password assignment ("password=...", "://user:secret@")
// from free text, e.g. a server error message that echoes a connection string.
std::string ScrubSecrets(std::string_view text);

// A short, safe description of where a conninfo points: "host:port/dbname" (with defaults as
// libpq would apply them from the environment), for messages like `source (db1:5432/app)`.
std::string DescribeConninfo(std::string_view conninfo);

// Overwrites with '*', in place, every byte of `arg` (one NUL-terminated command-line argument)
// that libpq could read as a password: the value of `password=` / `sslpassword=` in key/value
// form (unquoted up to whitespace, or inside single quotes), of a URI's `?password=` / `&password=`
// parameter, and a URI's user-info password (`scheme://user:SECRET@`). The keyword is matched
// anywhere and in any case (`--source=password=x`, `PGPASSWORD=x`), so text that is not a
// conninfo may be masked too: call it only on a copy that nothing parses any more (argv after it
// was copied). The length of the argument does not change. Returns how many bytes were masked.
size_t ScrubPasswordsInPlace(char* arg);

// A conninfo for a child process's argv: `conninfo` without its password, and the password
// (nullopt when there is none) for the child's PGPASSWORD. `conninfo` is returned unchanged when
// it holds no password. sslpassword stays in the conninfo (libpq reads it from nowhere else).
// Errors: kUsage when `conninfo` holds a password but libpq cannot parse it.
struct ConninfoAndPassword {
  std::string conninfo;
  std::optional<std::string> password;
};
Result<ConninfoAndPassword> SeparatePassword(std::string_view conninfo);

// `conninfo` (key=value form or a URI) with its database replaced by `dbname`, as key=value
// pairs: for the verbs that walk every database of a cluster from one conninfo. Errors: kUsage
// when libpq cannot parse `conninfo` (the message never shows a password).
Result<std::string> WithDatabase(std::string_view conninfo, std::string_view dbname);

}  // namespace pgbaton
