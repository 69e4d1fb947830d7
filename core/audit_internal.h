// Internals shared by core/audit_*.cpp. Not part of the audit interface.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/crypto.h"

namespace dlc::audit::detail {

inline constexpr std::string_view kZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::string_view kRecoverCommand = "audit recover";

// A line is "record-shaped" when it parses as a JSON object whose "v", "type"
// and "hash" are strings and whose "seq" is an unsigned integer. Lines that
// are not (garbage, a record cut short by a crash) are what a recovery note
// may acknowledge; record-shaped lines are always checked in full.
std::optional<nlohmann::json> parse_record_shaped(std::string_view line);

bool is_lower_hex(std::string_view s, std::size_t len);
std::string sha256_hex(std::string_view data);

// {"fingerprint": ..., "public": <64 hex>} as written in checkpoints and heads.
nlohmann::json key_json(const crypto::Ed25519PublicKey& key);
// The key a checkpoint or head names; nullopt when malformed or the
// fingerprint does not belong to the raw key.
std::optional<crypto::Ed25519PublicKey> key_from_json(const nlohmann::json& key);

// What "sig" signs. A checkpoint: canonical_json of the record without "hash"
// and "sig" (its hash is computed after signing, over the sig too).
std::string checkpoint_message(const nlohmann::json& checkpoint);
// A head: canonical_json of the head without "sig" (its "hash" is the sealed
// checkpoint's hash and is signed).
std::string head_message(const nlohmann::json& head);

}  // namespace dlc::audit::detail
