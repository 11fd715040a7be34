// Identifiers for referrals, assignments and events. Random where new, derived where they must be
// stable: an assignment id follows from its referral id and the need's position, so redelivery
// yields the same id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace schakel::referral {

std::string NewReferralId();  // "r-" + 24 hex characters (96 random bits)
std::string NewEventId();     // "e-" + 32 hex characters
std::string AssignmentId(std::string_view referral_id, std::uint32_t need_index);

}  // namespace schakel::referral
