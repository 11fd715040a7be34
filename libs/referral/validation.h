// Checks a submitted referral against the network before anything is published. An error is
// INVALID_ARGUMENT naming the field path and the problem ("referral.needs[1].code: unknown need
// 'x'"); it never repeats personal data (client code, BSN, free text).
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "libs/routing/network.h"
#include "schakel/v1/referral.pb.h"

namespace schakel::referral {

inline constexpr std::size_t kMaxNeeds = 20;
inline constexpr std::size_t kMaxDetailsChars = 2000;  // Unicode code points
inline constexpr std::size_t kMaxClientCodeChars = 64;
inline constexpr std::size_t kMaxClientNameChars = 200;     // Unicode code points
inline constexpr std::size_t kMaxClientContactChars = 500;  // Unicode code points
inline constexpr std::size_t kMaxLanguages = 10;
inline constexpr std::size_t kMaxSharingOrganisations = 50;
// What the limits above add up to: an accepted referral serialises to at most this many bytes (the
// fuzzer checks it). Intake's gRPC receive limit (libs/service/server.h) is well above it.
inline constexpr std::size_t kMaxReferralBytes = 256 * 1024;

// Also refuses unknown fields anywhere in the referral (a newer client's, or smuggled bytes):
// intake copies the needs and the sharing permission into the event it publishes, and only what the
// contract names may travel on.
absl::Status ValidateReferral(const v1::Referral& referral, const routing::Network& network);

// The Dutch BSN check: nine digits and the "11-proef".
bool IsValidBsn(std::string_view bsn);

}  // namespace schakel::referral
