#include "libs/referral/ids.h"

#include <sodium.h>

#include <array>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace schakel::referral {
namespace {

template <std::size_t N>
std::string RandomHex() {
  if (sodium_init() < 0) std::abort();  // no randomness: nothing safe to do
  std::array<unsigned char, N> bytes;
  randombytes_buf(bytes.data(), bytes.size());
  std::array<char, 2 * N + 1> hex;
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  return std::string(hex.data(), 2 * N);
}

}  // namespace

std::string NewReferralId() { return "r-" + RandomHex<12>(); }
std::string NewEventId() { return "e-" + RandomHex<16>(); }

std::string AssignmentId(std::string_view referral_id, std::uint32_t need_index) {
  return absl::StrCat("a-", std::string(referral_id.substr(referral_id.starts_with("r-") ? 2 : 0)),
                      "-", need_index);
}

}  // namespace schakel::referral
