// Sealing personal data with a client's data key: XChaCha20-Poly1305 (libsodium's IETF AEAD) with
// a random nonce per sealing and associated data that names where the ciphertext belongs, so that a
// sealed field copied into another referral or another need does not open. The keys themselves live
// in the key service (services/keys); whoever holds none sees only ciphertext.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "schakel/v1/events.pb.h"

namespace schakel::privacy {

inline constexpr std::size_t kDataKeyBytes = 32;

// 32 random bytes.
std::string NewDataKey();

// The associated data of a client's details and of one need's details in a referral.
std::string ClientContext(std::string_view referral_id);
std::string NeedContext(std::string_view referral_id, std::uint32_t need_index);
// The associated data of what people type about an assignment: the reason and the outcome of one
// status change (AssignmentStatusChanged version `version`), and a referrer's reason to cancel.
std::string StatusReasonContext(std::string_view referral_id, std::string_view assignment_id,
                                std::uint64_t version);
std::string StatusOutcomeContext(std::string_view referral_id, std::string_view assignment_id,
                                 std::uint64_t version);
std::string CancelReasonContext(std::string_view referral_id, std::string_view assignment_id);

// INVALID_ARGUMENT when the key is not kDataKeyBytes long.
absl::StatusOr<v1::Sealed> Seal(std::string_view key_id, std::string_view key,
                                std::string_view context, std::string_view plaintext);
// The plaintext; INVALID_ARGUMENT when the key has the wrong size, DATA_LOSS when the ciphertext
// does not open with this key and context (changed, moved, or sealed with another key).
absl::StatusOr<std::string> Open(const v1::Sealed& sealed, std::string_view key,
                                 std::string_view context);

// A 32-byte key read from a file of 64 hex characters (the key service's master key); the file is
// made (mode 0600) with a random key when `create` and it does not exist.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool create);

}  // namespace schakel::privacy
