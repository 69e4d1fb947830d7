// Internal to dlc::migrate: the remote destination (a dlc receiver reached
// over mutual TLS 1.3) and the wire protocol both sides share
// (docs/migrate.md, "Remote protocol").
#pragma once

#include <memory>

#include "migrate/destination.h"
#include "migrate/migrate.h"

namespace dlc::migrate {

std::unique_ptr<Destination> make_remote_destination(const Endpoint& ep, const MigrateOptions& o);

}  // namespace dlc::migrate
