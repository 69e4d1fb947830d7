// Masking of found values (JR/T 0167 8c: partial masking). A masked form keeps
// just enough to recognise the value (region of an ID, issuer and last digits
// of a card) and never the whole of it; secrets keep nothing but their kind.
#pragma once

#include <string>
#include <string_view>

#include "classify/classify.h"

namespace dlc::classify {

// The one-line sample shown in reports: "110105********123X", "6222 **** **** 1234".
std::string mask_sample(InfoType type, std::string_view raw);
// What replaces the value in a masked copy. Equal to the sample except for
// private keys, whose whole block becomes header, a redaction line and footer.
std::string mask_replacement(InfoType type, std::string_view raw);

}  // namespace dlc::classify
