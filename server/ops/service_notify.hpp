// Tells systemd (Type=notify) where the server is in its life, through sd_notify(3): READY=1 once
// the port listens, RELOADING=1 ... READY=1 around a SIGHUP reload, STOPPING=1 when the drain
// starts. Without $NOTIFY_SOCKET (not run by systemd) every call does nothing.
#pragma once

namespace pushwire::server::service_notify {

void ready();
// With MONOTONIC_USEC, as Type=notify-reload (systemd 253+) requires; plain Type=notify takes it too.
void reloading();
void stopping();

}  // namespace pushwire::server::service_notify
