#include "tests/support/cutover_fleet.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgbaton::testing::cutover {

Status BouncerFleet::Start(const testing::PgServer& source) {
  for (int i = 0; i < 3; ++i) {
    testing::PgBouncerOptions bo;
    bo.databases["app"] = fmt::format("host=127.0.0.1 port={} dbname=app", source.port());
    bo.users = {"postgres", "app_rw"};
    PGB_ASSIGN_OR_RETURN(auto b, testing::PgBouncer::Start(bo));
    bouncers.push_back(std::move(b));
  }
  testing::HaProxyOptions ho;
  ho.backend_ports = {bouncers[0]->port(), bouncers[1]->port()};
  PGB_ASSIGN_OR_RETURN(haproxy, testing::HaProxy::Start(ho));
  return Status::Ok();
}

std::string BouncerFleet::ViaHaProxy() const {
  return fmt::format("host=127.0.0.1 port={} dbname=app user=postgres", haproxy->port());
}

std::string BouncerFleet::Direct() const { return bouncers[2]->Conninfo("app"); }

std::string BouncerFleet::FlipCommand(int i, bool fail_to_new) const {
  std::string sed = fmt::format(
      "sed -i \"s|^app = .*|app = host=$PGBATON_FLIP_HOST port=$PGBATON_FLIP_PORT "
      "dbname=$PGBATON_FLIP_DBNAME|\" {}",
      bouncers[i]->ini_path());
  if (!fail_to_new) return sed;
  return "if [ \"$PGBATON_FLIP_TO\" = new ]; then echo 'flip: host unreachable' >&2; exit 7; "
         "fi; " +
         sed;
}

std::vector<std::string> BouncerFleet::CutoverFlags(const std::function<std::string(int)>& admin,
                                                    const std::string& third_flip_cmd) const {
  std::vector<std::string> f;
  for (int i = 0; i < 3; ++i) {
    f.push_back("--fence");
    f.push_back("pgbouncer:" + (admin ? admin(i) : bouncers[i]->AdminConninfo()));
  }
  for (const std::string& ini : {bouncers[0]->ini_path(), bouncers[1]->ini_path(), std::string()}) {
    f.push_back("--pgbouncer-ini");
    f.push_back(ini);
  }
  for (const std::string& cmd :
       {std::string(), std::string(), third_flip_cmd.empty() ? FlipCommand(2) : third_flip_cmd}) {
    f.push_back("--pgbouncer-flip-cmd");
    f.push_back(cmd);
  }
  return f;
}

std::string BouncerFleet::Describe(const std::vector<int>& dead) const {
  std::string out;
  for (int i = 0; i < 3; ++i) {
    if (std::count(dead.begin(), dead.end(), i)) {
      out += fmt::format("[{}: dead, ini port {}] ", i, IniPort(i));
      continue;
    }
    auto port = bouncers[i]->BackendPort("app");
    auto paused = bouncers[i]->Paused("app");
    out += fmt::format("[{}: port {} {}] ", i, port.ok() ? std::to_string(*port) : "?",
                       paused.ok() ? (*paused ? "paused" : "running") : "?");
  }
  return out;
}

bool BouncerFleet::AllOn(int port, std::string* why, const std::vector<int>& dead) const {
  bool ok = true;
  for (int i = 0; i < 3; ++i) {
    if (std::count(dead.begin(), dead.end(), i)) continue;
    auto p = bouncers[i]->BackendPort("app");
    auto paused = bouncers[i]->Paused("app");
    ok &= p.ok() && *p == port && paused.ok() && !*paused;
  }
  // The ini files agree too: a member restarting reads the same side.
  for (int i = 0; i < 3; ++i) ok &= IniPort(i) == port;
  if (!ok) *why = Describe(dead);
  return ok;
}

int BouncerFleet::IniPort(int i) const {
  std::string ini = testing::ReadFile(bouncers[i]->ini_path());
  size_t app = ini.find("\napp = ");
  if (app == std::string::npos) app = ini.find("app = ");
  size_t port = ini.find("port=", app);
  if (app == std::string::npos || port == std::string::npos) return -1;
  return std::atoi(ini.c_str() + port + 5);
}

}  // namespace pgbaton::testing::cutover
