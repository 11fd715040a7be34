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

std::string NextAssignmentId(std::string_view previous) {
  const std::size_t dot = previous.rfind('.');
  const std::size_t dash = previous.rfind('-');
  if (dot != std::string_view::npos && (dash == std::string_view::npos || dot > dash)) {
    int step = 0;
    for (char c : previous.substr(dot + 1)) step = step * 10 + (c - '0');
    return absl::StrCat(std::string(previous.substr(0, dot)), ".", step + 1);
  }
  return absl::StrCat(std::string(previous), ".1");
}

std::uint32_t NeedIndexOf(std::string_view assignment_id) {
  // a-<referral>-<need index>[.<step>]
  const std::size_t dash = assignment_id.rfind('-');
  std::uint32_t index = 0;
  for (std::size_t i = dash == std::string_view::npos ? assignment_id.size() : dash + 1;
       i < assignment_id.size() && assignment_id[i] >= '0' && assignment_id[i] <= '9'; ++i) {
    index = index * 10 + static_cast<std::uint32_t>(assignment_id[i] - '0');
  }
  return index;
}

int ChainStepOf(std::string_view assignment_id) {
  const std::size_t dot = assignment_id.rfind('.');
  const std::size_t dash = assignment_id.rfind('-');
  if (dot == std::string_view::npos || (dash != std::string_view::npos && dot < dash)) return 0;
  int step = 0;
  for (char c : assignment_id.substr(dot + 1)) step = step * 10 + (c - '0');
  return step;
}

}  // namespace schakel::referral
