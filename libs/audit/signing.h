// Signing audit entries: each writer signs every entry of its chain with its own Ed25519 key, and
// the verifier checks each signature against the public keys it trusts for that writer. So a writer
// that may write the topic (every writer may) can still not add an entry to another writer's chain,
// nor rewrite a chain, without `schakelctl audit verify` naming it.
//
// The signed message is the bytes "schakel.audit.v1.signature" followed by the entry's 32-byte hash
// (which covers every field before it: entry.h); the signature is Ed25519 as in RFC 8032
// (libsodium's crypto_sign_detached), so an auditor can check it with any Ed25519 implementation.
//
// The keys are files in the formats `openssl` writes, one pair per writer:
//   openssl genpkey -algorithm ed25519 -out inbox-mjd.key       the writer's (PKCS#8 PEM, mode
//   0600) openssl pkey -in inbox-mjd.key -pubout -out inbox-mjd.pub    the verifier's
//   (SubjectPublicKeyInfo)
// A folder of <writer>.pub files is what the verifier trusts; a .pub file may hold several keys
// (one after the other) so that a writer's old key still verifies its old entries after a new one
// is issued.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "schakel/v1/audit.pb.h"

namespace schakel::audit {

inline constexpr std::size_t kPublicKeySize = 32;
inline constexpr std::size_t kSignatureSize = 64;
inline constexpr char kSignatureContext[] = "schakel.audit.v1.signature";

// A writer's key pair (libsodium's layout: the secret key is the 32-byte seed and the public key).
class SigningKey {
 public:
  // From the 32-byte seed (RFC 8032's private key).
  static absl::StatusOr<SigningKey> FromSeed(std::string_view seed);
  // A new random key (tests).
  static SigningKey Generate();
  // `openssl genpkey -algorithm ed25519` output.
  static absl::StatusOr<SigningKey> FromPem(std::string_view pem);
  static absl::StatusOr<SigningKey> ReadFile(const std::string& path);

  ~SigningKey();
  SigningKey(const SigningKey&) = default;
  SigningKey& operator=(const SigningKey&) = default;

  const std::string& public_key() const { return public_key_; }
  // The 64-byte Ed25519 signature of `message`.
  std::string SignBytes(std::string_view message) const;

 private:
  SigningKey() = default;
  std::string public_key_{};
  std::string secret_key_{};
};

// The message a signature covers: kSignatureContext and the 32-byte hash.
std::string SignedMessage(std::string_view hash);
// Sets the entry's signature and signing_key (after Link set its hash).
void Sign(v1::AuditEntry& entry, const SigningKey& key);
// True when the entry carries a signature that verifies under the key it names (whoever's it is).
bool SignatureVerifies(const v1::AuditEntry& entry);

// The public keys in PEM text (SubjectPublicKeyInfo blocks, as `openssl pkey -pubout` writes them).
absl::StatusOr<std::vector<std::string>> PublicKeysFromPem(std::string_view pem);
// One key as such a block.
std::string PublicKeyPem(std::string_view public_key);

// Which writer each trusted public key belongs to.
class TrustedKeys {
 public:
  // Fails when the key is already another writer's (one key, one writer) or is no 32-byte key.
  absl::Status Add(const std::string& writer, const std::string& public_key);
  // Every <writer>.pub in `folder` (other files are ignored); NOT_FOUND when there is none.
  absl::Status AddFolder(const std::string& folder);

  // The writer `public_key` belongs to, or nullptr.
  const std::string* WriterOf(const std::string& public_key) const;
  bool Has(const std::string& writer) const { return keys_.count(writer) > 0; }
  bool empty() const { return writer_of_.empty(); }
  std::size_t size() const { return writer_of_.size(); }

 private:
  std::map<std::string, std::set<std::string>> keys_;  // writer -> its keys
  std::map<std::string, std::string> writer_of_;       // key -> writer
};

}  // namespace schakel::audit
