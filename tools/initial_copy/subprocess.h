// Runs a helper program (pg_dump, psql) with a string on its standard input and collects its
// standard output and error, without a shell and without temporary files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace pgbaton::tools::copy {

struct ProcessOutput {
  int exit_code = -1;  // -1 when killed by a signal or not started
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH) with `input` on stdin; waits for it to exit. The child gets
// this process's environment with `env` set on top (how a password reaches it: `ps` shows any
// process's argv, while /proc/PID/environ is readable only by its user).
// Errors: kNotFound when the program cannot be started (the message names it).
Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv, const std::string& input,
                                 const std::map<std::string, std::string>& env = {});

}  // namespace pgbaton::tools::copy
