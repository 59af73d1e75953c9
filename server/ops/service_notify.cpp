#include "server/ops/service_notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace pushwire::server::service_notify {

void ready() { sd_notify(0, "READY=1\nSTATUS=listening"); }

void reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + static_cast<unsigned long long>(ts.tv_nsec) / 1000;
  std::string msg = "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=";
  msg += std::to_string(usec);
  sd_notify(0, msg.c_str());
}

void stopping() { sd_notify(0, "STOPPING=1\nSTATUS=draining"); }

}  // namespace pushwire::server::service_notify
