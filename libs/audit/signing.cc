#include "libs/audit/signing.h"

#include <sodium.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "libs/audit/entry.h"

namespace schakel::audit {
namespace {

// The DER that wraps a raw Ed25519 key (RFC 8410): a PKCS#8 PrivateKeyInfo holds the 32-byte seed
// after these 16 bytes, a SubjectPublicKeyInfo the 32-byte public key after these 12. OpenSSL
// writes exactly these for `genpkey -algorithm ed25519` and `pkey -pubout`.
constexpr unsigned char kPrivatePrefix[] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                            0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
constexpr unsigned char kPublicPrefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                           0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
constexpr char kPrivateLabel[] = "PRIVATE KEY";
constexpr char kPublicLabel[] = "PUBLIC KEY";

void InitSodium() {
  if (sodium_init() < 0) std::abort();  // no cryptography at all: a broken invariant
}

// The DER of every "-----BEGIN <label>-----" block in `pem`, in order.
absl::StatusOr<std::vector<std::string>> PemBlocks(std::string_view pem, std::string_view label) {
  const std::string begin = absl::StrCat("-----BEGIN ", std::string(label), "-----");
  const std::string end = absl::StrCat("-----END ", std::string(label), "-----");
  std::vector<std::string> blocks;
  std::size_t at = 0;
  while ((at = pem.find(begin, at)) != std::string_view::npos) {
    const std::size_t body = at + begin.size();
    const std::size_t stop = pem.find(end, body);
    if (stop == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("a ", std::string(label), " block has no end"));
    }
    const std::string_view base64 = pem.substr(body, stop - body);
    std::string der(base64.size(), '\0');
    std::size_t length = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(der.data()), der.size(), base64.data(),
                          base64.size(), " \r\n\t", &length, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("a ", std::string(label), " block is not base64"));
    }
    der.resize(length);
    blocks.push_back(std::move(der));
    at = stop + end.size();
  }
  return blocks;
}

// The 32 bytes after `prefix` in `der`, when `der` is exactly that.
template <std::size_t N>
absl::StatusOr<std::string> RawKey(const std::string& der, const unsigned char (&prefix)[N]) {
  if (der.size() != N + 32 || der.compare(0, N, reinterpret_cast<const char*>(prefix), N) != 0) {
    return absl::InvalidArgumentError(
        "not an Ed25519 key (make one with: openssl genpkey -algorithm ed25519)");
  }
  return der.substr(N);
}

std::string ReadWhole(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  *ok = static_cast<bool>(in);
  return text.str();
}

}  // namespace

absl::StatusOr<SigningKey> SigningKey::FromSeed(std::string_view seed) {
  if (seed.size() != crypto_sign_SEEDBYTES) {
    return absl::InvalidArgumentError("an Ed25519 seed has 32 bytes");
  }
  InitSodium();
  SigningKey key;
  key.public_key_.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  key.secret_key_.assign(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(key.public_key_.data()),
                           reinterpret_cast<unsigned char*>(key.secret_key_.data()),
                           reinterpret_cast<const unsigned char*>(seed.data()));
  return key;
}

SigningKey SigningKey::Generate() {
  InitSodium();
  std::string seed(crypto_sign_SEEDBYTES, '\0');
  randombytes_buf(seed.data(), seed.size());
  SigningKey key = *FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return key;
}

absl::StatusOr<SigningKey> SigningKey::FromPem(std::string_view pem) {
  absl::StatusOr<std::vector<std::string>> blocks = PemBlocks(pem, kPrivateLabel);
  if (!blocks.ok()) return blocks.status();
  if (blocks->size() != 1) {
    return absl::InvalidArgumentError(
        "expected one PRIVATE KEY block (made by: openssl genpkey -algorithm ed25519)");
  }
  absl::StatusOr<std::string> seed = RawKey((*blocks)[0], kPrivatePrefix);
  sodium_memzero((*blocks)[0].data(), (*blocks)[0].size());
  if (!seed.ok()) return seed.status();
  absl::StatusOr<SigningKey> key = FromSeed(*seed);
  sodium_memzero(seed->data(), seed->size());
  return key;
}

absl::StatusOr<SigningKey> SigningKey::ReadFile(const std::string& path) {
  bool ok = false;
  std::string pem = ReadWhole(path, &ok);
  if (!ok) return absl::NotFoundError(absl::StrCat(path, ": cannot read the audit signing key"));
  absl::StatusOr<SigningKey> key = FromPem(pem);
  sodium_memzero(pem.data(), pem.size());
  if (!key.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", key.status().message()));
  return key;
}

SigningKey::~SigningKey() {
  if (!secret_key_.empty()) sodium_memzero(secret_key_.data(), secret_key_.size());
}

std::string SigningKey::SignBytes(std::string_view message) const {
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       reinterpret_cast<const unsigned char*>(secret_key_.data()));
  return signature;
}

std::string SignedMessage(std::string_view hash) {
  return absl::StrCat(kSignatureContext, std::string(hash));
}

void Sign(v1::AuditEntry& entry, const SigningKey& key) {
  entry.set_signature(key.SignBytes(SignedMessage(entry.hash())));
  entry.set_signing_key(key.public_key());
}

bool SignatureVerifies(const v1::AuditEntry& entry) {
  if (entry.signature().size() != crypto_sign_BYTES ||
      entry.signing_key().size() != crypto_sign_PUBLICKEYBYTES) {
    return false;
  }
  InitSodium();
  const std::string message = SignedMessage(entry.hash());
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(entry.signature().data()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(),
             reinterpret_cast<const unsigned char*>(entry.signing_key().data())) == 0;
}

absl::StatusOr<std::vector<std::string>> PublicKeysFromPem(std::string_view pem) {
  absl::StatusOr<std::vector<std::string>> blocks = PemBlocks(pem, kPublicLabel);
  if (!blocks.ok()) return blocks.status();
  if (blocks->empty()) {
    return absl::InvalidArgumentError(
        "no PUBLIC KEY block (made by: openssl pkey -in <writer>.key -pubout)");
  }
  std::vector<std::string> keys;
  for (const std::string& der : *blocks) {
    absl::StatusOr<std::string> key = RawKey(der, kPublicPrefix);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  return keys;
}

std::string PublicKeyPem(std::string_view public_key) {
  InitSodium();
  std::string der(reinterpret_cast<const char*>(kPublicPrefix), sizeof(kPublicPrefix));
  der.append(public_key);
  std::string base64(sodium_base64_ENCODED_LEN(der.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(base64.data(), base64.size(),
                    reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  base64.resize(base64.size() - 1);  // the terminating NUL
  return absl::StrCat("-----BEGIN PUBLIC KEY-----\n", base64, "\n-----END PUBLIC KEY-----\n");
}

absl::Status TrustedKeys::Add(const std::string& writer, const std::string& public_key) {
  if (public_key.size() != kPublicKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(writer, ": an Ed25519 public key has 32 bytes"));
  }
  if (auto it = writer_of_.find(public_key); it != writer_of_.end() && it->second != writer) {
    return absl::InvalidArgumentError(
        absl::StrCat("the key ", Hex(public_key).substr(0, 16), "… is trusted for ", it->second,
                     " already, not ", writer, " too: give each writer its own key"));
  }
  writer_of_[public_key] = writer;
  keys_[writer].insert(public_key);
  return absl::OkStatus();
}

absl::Status TrustedKeys::AddFolder(const std::string& folder) {
  std::error_code error;
  std::filesystem::directory_iterator it(folder, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat(folder, ": cannot read the trusted audit keys (", error.message(), ")"));
  }
  std::size_t added = 0;
  for (const std::filesystem::directory_entry& file : it) {
    if (file.path().extension() != ".pub") continue;
    const std::string writer = file.path().stem().string();
    bool ok = false;
    const std::string pem = ReadWhole(file.path().string(), &ok);
    if (!ok) return absl::NotFoundError(absl::StrCat(file.path().string(), ": cannot read"));
    absl::StatusOr<std::vector<std::string>> keys = PublicKeysFromPem(pem);
    if (!keys.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path().string(), ": ", keys.status().message()));
    }
    for (const std::string& key : *keys) {
      if (absl::Status s = Add(writer, key); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(file.path().string(), ": ", s.message()));
      }
      ++added;
    }
  }
  if (added == 0) {
    return absl::NotFoundError(
        absl::StrCat(folder, ": no <writer>.pub file (the writers' public audit keys)"));
  }
  return absl::OkStatus();
}

const std::string* TrustedKeys::WriterOf(const std::string& public_key) const {
  auto it = writer_of_.find(public_key);
  return it == writer_of_.end() ? nullptr : &it->second;
}

}  // namespace schakel::audit
