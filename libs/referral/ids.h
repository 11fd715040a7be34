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
// The id of the assignment that continues `previous` (forwarding, escalation): "a-…-0" → "a-…-0.1"
// → "a-…-0.2". Stable, so a redelivered forward yields the same id.
std::string NextAssignmentId(std::string_view previous);
// The need index an assignment id carries: "a-…-2" and "a-…-2.1" → 2.
std::uint32_t NeedIndexOf(std::string_view assignment_id);
// The position of an assignment in its need's chain: "a-…-2" 0, "a-…-2.3" 3 (a later offer of the
// same need has a higher step).
int ChainStepOf(std::string_view assignment_id);

}  // namespace schakel::referral
