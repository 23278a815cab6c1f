// Connection strings: masking for display. A password never reaches a log line, status output,
// metric label or error message: everything that shows a conninfo goes through MaskConninfo.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace pgbaton
