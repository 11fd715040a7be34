#include "libs/privacy/owner_proof.h"

#include <sodium.h>

#include <cstdint>
#include <cstdlib>

namespace schakel::privacy {
namespace {

void InitSodium() {
  if (sodium_init() < 0) std::abort();  // no safe randomness or MAC: nothing may be proven
}

void AppendLength(std::uint32_t n, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((n >> shift) & 0xff));
}

void AppendItem(std::string_view item, std::string* out) {
  AppendLength(static_cast<std::uint32_t>(item.size()), out);
  out->append(item.data(), item.size());
}

void AppendUint(std::uint64_t value, int bytes, std::string* out) {
  AppendLength(static_cast<std::uint32_t>(bytes), out);
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void AppendStatus(int status, std::string* out) {
  AppendUint(static_cast<std::uint32_t>(status), 4, out);
}

absl::StatusOr<std::string> Mac(std::string_view token, const std::string& input) {
  if (token.size() != kOwnerTokenBytes) {
    return absl::InvalidArgumentError("owner token must be 32 bytes");
  }
  InitSodium();
  std::string proof(kOwnerProofBytes, '\0');
  crypto_auth(reinterpret_cast<unsigned char*>(proof.data()),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(),
              reinterpret_cast<const unsigned char*>(token.data()));
  return proof;
}

bool Check(std::string_view token, std::string_view proof, const std::string& input) {
  if (token.size() != kOwnerTokenBytes || proof.size() != kOwnerProofBytes) return false;
  InitSodium();
  return crypto_auth_verify(reinterpret_cast<const unsigned char*>(proof.data()),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                            reinterpret_cast<const unsigned char*>(token.data())) == 0;
}

}  // namespace

static_assert(kOwnerTokenBytes == crypto_auth_KEYBYTES);
static_assert(kOwnerProofBytes == crypto_auth_BYTES);

std::string NewOwnerToken() {
  InitSodium();
  std::string token(kOwnerTokenBytes, '\0');
  randombytes_buf(token.data(), token.size());
  return token;
}

std::string OwnerProofInput(const v1::AssignmentStatusChanged& change) {
  std::string out;
  AppendItem(kOwnerProofDomain, &out);
  AppendItem("status", &out);
  AppendItem(change.meta().referral_id(), &out);
  AppendItem(change.meta().assignment_id(), &out);
  AppendUint(change.version(), 8, &out);
  AppendStatus(change.from_status(), &out);
  AppendStatus(change.to_status(), &out);
  AppendItem(change.organisation(), &out);
  AppendItem(change.by(), &out);
  AppendItem(change.forward_to(), &out);
  return out;
}

std::string OwnerProofInput(const v1::ForwardRequested& forward) {
  std::string out;
  AppendItem(kOwnerProofDomain, &out);
  AppendItem("forward", &out);
  AppendItem(forward.meta().referral_id(), &out);
  AppendItem(forward.meta().assignment_id(), &out);
  AppendItem(forward.from_organisation(), &out);
  AppendItem(forward.to_organisation(), &out);
  return out;
}

absl::StatusOr<std::string> ProveOwner(std::string_view token,
                                       const v1::AssignmentStatusChanged& change) {
  return Mac(token, OwnerProofInput(change));
}

absl::StatusOr<std::string> ProveOwner(std::string_view token,
                                       const v1::ForwardRequested& forward) {
  return Mac(token, OwnerProofInput(forward));
}

bool VerifyOwner(std::string_view token, const v1::AssignmentStatusChanged& change) {
  return Check(token, change.owner_proof(), OwnerProofInput(change));
}

bool VerifyOwner(std::string_view token, const v1::ForwardRequested& forward) {
  return Check(token, forward.owner_proof(), OwnerProofInput(forward));
}

}  // namespace schakel::privacy
