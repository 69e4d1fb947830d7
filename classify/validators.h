// Check rules of the identifiers dlc recognises. Each takes the candidate as
// found (separators already removed where noted) and says whether it is a
// valid instance; none of them allocates. Rules and sources: docs/classify.md.
#pragma once

#include <string_view>

namespace dlc::classify::validate {

// GB 11643-1999: 6-digit region (valid province prefix), YYYYMMDD birth date
// (a real date from 1880 on, not in the future), 3-digit sequence, and the
// ISO 7064 MOD 11-2 check character (0-9 or X/x).
bool resident_id18(std::string_view s) noexcept;
char resident_id18_check(std::string_view first17) noexcept;  // '\0' on bad input
// Legacy 15-digit ID: region + YYMMDD (19YY) + sequence; no check character.
bool resident_id15(std::string_view s) noexcept;
// Province prefix of GB/T 2260 (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81-83).
bool province_code(char a, char b) noexcept;

// GB 32100-2015: 18 characters over 0-9A-HJ-NP-RTUW-Y, registration authority
// and category codes, 6-digit region, the embedded GB 11714 organisation code
// with its own check character, and the final check character (weights 3^i mod 31).
bool uscc(std::string_view s) noexcept;
char uscc_check(std::string_view first17) noexcept;    // '\0' on bad input
bool organisation_code(std::string_view s9) noexcept;  // GB 11714, 9 characters

// Luhn (ISO/IEC 7812-1) over a digit string.
bool luhn(std::string_view digits) noexcept;
// Known issuer ranges: UnionPay 62/81, Visa 4, Mastercard 51-55/2221-2720,
// Amex 34/37, JCB 3528-3589, Discover 6011/644-649/65, Diners 300-305/36/38,
// and the legacy Chinese debit prefixes 9558/95599. Length-checked per brand.
bool card_bin(std::string_view digits) noexcept;
// 13-19 digits, a known BIN and Luhn.
bool bank_card(std::string_view digits) noexcept;

// Mainland mobile: 11 digits, 1 + a segment assigned to mobile networks.
bool mobile(std::string_view digits) noexcept;

// RFC 5321-shaped address: local@domain with a dotted domain and an
// alphabetic TLD of 2+ letters.
bool email(std::string_view s) noexcept;
bool ipv4(std::string_view s) noexcept;  // dotted quad, no leading zeros
bool ipv6(std::string_view s) noexcept;  // inet_pton, at least two colons

// ISO 13616: country code, 2 check digits, BBAN of the country's length, mod 97 == 1.
// Spaces must already be removed.
bool iban(std::string_view s) noexcept;

// PRC passports: E + 8 digits, E + letter (not I/O) + 7 digits, G + 8 digits,
// D/S/P + 7 digits (diplomatic, service, public affairs).
bool passport(std::string_view s) noexcept;
// Travel permits: C + 8 digits or C + letter + 7 digits (to HK/Macau),
// L + 8 digits (to Taiwan), H/M + 8 or 10 digits (home-return permits).
bool travel_permit(std::string_view s) noexcept;

// Access key ids: AKIA/ASIA + 16 of [A-Z2-7]; LTAI + 12..20 alphanumerics;
// AKID + 32..34 alphanumerics.
bool aws_access_key(std::string_view s) noexcept;
bool alibaba_access_key(std::string_view s) noexcept;
bool tencent_secret_id(std::string_view s) noexcept;
// header.payload.signature, base64url segments; the header decodes to a JSON
// object naming "alg".
bool jwt(std::string_view s) noexcept;

// Whether a configured value is a placeholder rather than a secret
// ("", "****", "${VAR}", "<password>", "changeme" is NOT a placeholder).
bool placeholder_value(std::string_view v) noexcept;

}  // namespace dlc::classify::validate
