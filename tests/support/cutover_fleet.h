// A fleet of PgBouncers in front of a cutover test's source, as the site runs them: HAProxy
// balancing over two PgBouncer processes (one host's pair), plus a third PgBouncer reached
// directly (another host). The first two are flipped through their pgbouncer.ini, the third by a
// flip command (sed on its ini, as an `ssh host ...` would), and helpers that say where each
// member points, so that a test can check "never some members on each side".
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/haproxy.h"
#include "tests/support/pg_server.h"
#include "tests/support/pgbouncer.h"

namespace pgbaton::testing::cutover {

struct BouncerFleet {
  std::vector<std::unique_ptr<testing::PgBouncer>> bouncers;  // [0], [1] behind HAProxy; [2]
  std::unique_ptr<testing::HaProxy> haproxy;

  // Starts the three PgBouncers (database "app" on `source`) and HAProxy over the first two.
  Status Start(const testing::PgServer& source);

  // Client conninfos of database "app": through HAProxy, and through the third PgBouncer.
  std::string ViaHaProxy() const;
  std::string Direct() const;

  // The shell command that points bouncers[i]'s "app" at PGBATON_FLIP_HOST/PORT/DBNAME (sed on
  // its ini). `fail_to_new`: it fails instead when asked to flip to the new cluster.
  std::string FlipCommand(int i, bool fail_to_new = false) const;

  // --fence pgbouncer:... for the three (admin(i) replaces member i's admin conninfo when set),
  // --pgbouncer-ini for the first two and --pgbouncer-flip-cmd `third_flip_cmd` (default:
  // FlipCommand(2)) for the third.
  std::vector<std::string> CutoverFlags(const std::function<std::string(int)>& admin = nullptr,
                                        const std::string& third_flip_cmd = "") const;

  // "port P paused|running" of each live member, e.g. for messages. Members in `dead` are skipped.
  std::string Describe(const std::vector<int>& dead = {}) const;
  // Every live member points "app" at `port` and is not paused; false with a message otherwise.
  bool AllOn(int port, std::string* why, const std::vector<int>& dead = {}) const;
  // The port that bouncers[i]'s ini file gives for "app" (what it reads when it restarts).
  int IniPort(int i) const;
};

}  // namespace pgbaton::testing::cutover
