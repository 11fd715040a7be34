// Client pseudonyms: a keyed hash (BLAKE2b via libsodium) so that the same person gets the same
// pseudonym without the BSN or client code ever being stored or sent on. Without the key a
// pseudonym cannot be recomputed from a guessed BSN (the BSN space is small enough to enumerate, so
// a plain hash would not do).
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace schakel::privacy {

class Pseudonymiser {
 public:
  static constexpr std::size_t kKeyBytes = 32;

  // The key file holds 64 hex characters (optionally followed by a newline).
  static absl::StatusOr<Pseudonymiser> FromKeyFile(const std::string& path);
  static absl::StatusOr<Pseudonymiser> FromHexKey(std::string_view hex);
  // Writes a new random key file (mode 0600) unless it exists.
  static absl::Status CreateKeyFileIfMissing(const std::string& path);

  // A BSN identifies the person across the network; a client code only within its referrer.
  std::string ForBsn(std::string_view bsn) const;
  std::string ForClientCode(std::string_view referring_organisation,
                            std::string_view client_code) const;
  // A keyed digest of any bytes in a named domain ("p-" + 32 hex), e.g. of a request, or of an
  // organisation's idempotency key: stable across processes that share the key.
  std::string Digest(std::string_view domain, std::string_view bytes) const {
    return Hash(domain, bytes);
  }

 private:
  explicit Pseudonymiser(const std::array<unsigned char, kKeyBytes>& key) : key_(key) {}
  std::string Hash(std::string_view domain, std::string_view value) const;

  std::array<unsigned char, kKeyBytes> key_;
};

}  // namespace schakel::privacy
