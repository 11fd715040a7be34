#include "libs/privacy/sealed.h"

#include <sodium.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "libs/privacy/pseudonym.h"

namespace schakel::privacy {
namespace {

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

absl::Status Init() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

}  // namespace

std::string NewDataKey() {
  if (sodium_init() < 0) std::abort();  // no safe randomness: nothing may be sealed
  std::string key(kDataKeyBytes, '\0');
  randombytes_buf(key.data(), key.size());
  return key;
}

std::string ClientContext(std::string_view referral_id) {
  return absl::StrCat("schakel.v1|", std::string(referral_id), "|client");
}

std::string NeedContext(std::string_view referral_id, std::uint32_t need_index) {
  return absl::StrCat("schakel.v1|", std::string(referral_id), "|need/", need_index);
}

std::string StatusReasonContext(std::string_view referral_id, std::string_view assignment_id,
                                std::uint64_t version) {
  return absl::StrCat("schakel.v1|", std::string(referral_id), "|status/",
                      std::string(assignment_id), "/", version, "/reason");
}

std::string StatusOutcomeContext(std::string_view referral_id, std::string_view assignment_id,
                                 std::uint64_t version) {
  return absl::StrCat("schakel.v1|", std::string(referral_id), "|status/",
                      std::string(assignment_id), "/", version, "/outcome");
}

std::string CancelReasonContext(std::string_view referral_id, std::string_view assignment_id) {
  return absl::StrCat("schakel.v1|", std::string(referral_id), "|cancel/",
                      std::string(assignment_id));
}

absl::StatusOr<v1::Sealed> Seal(std::string_view key_id, std::string_view key,
                                std::string_view context, std::string_view plaintext) {
  if (absl::Status s = Init(); !s.ok()) return s;
  if (key.size() != crypto_aead_xchacha20poly1305_ietf_KEYBYTES) {
    return absl::InvalidArgumentError(
        absl::StrCat("a data key has ", crypto_aead_xchacha20poly1305_ietf_KEYBYTES, " bytes"));
  }
  v1::Sealed sealed;
  sealed.set_key_id(std::string(key_id));
  std::string nonce(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  std::string ciphertext(plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(ciphertext.data()), &written, Bytes(plaintext),
      plaintext.size(), Bytes(context), context.size(), nullptr, Bytes(nonce), Bytes(key));
  ciphertext.resize(written);
  sealed.set_nonce(std::move(nonce));
  sealed.set_ciphertext(std::move(ciphertext));
  return sealed;
}

absl::StatusOr<std::string> Open(const v1::Sealed& sealed, std::string_view key,
                                 std::string_view context) {
  if (absl::Status s = Init(); !s.ok()) return s;
  if (key.size() != crypto_aead_xchacha20poly1305_ietf_KEYBYTES) {
    return absl::InvalidArgumentError(
        absl::StrCat("a data key has ", crypto_aead_xchacha20poly1305_ietf_KEYBYTES, " bytes"));
  }
  if (sealed.nonce().size() != crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
      sealed.ciphertext().size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return absl::DataLossError("sealed field: nonce or ciphertext has the wrong size");
  }
  std::string plaintext(sealed.ciphertext().size() - crypto_aead_xchacha20poly1305_ietf_ABYTES,
                        '\0');
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &written, nullptr,
          Bytes(sealed.ciphertext()), sealed.ciphertext().size(), Bytes(context), context.size(),
          Bytes(sealed.nonce()), Bytes(key)) != 0) {
    return absl::DataLossError(
        absl::StrCat("sealed field does not open with key ", sealed.key_id(), " in its place"));
  }
  plaintext.resize(written);
  return plaintext;
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool create) {
  if (create) {
    if (absl::Status made = Pseudonymiser::CreateKeyFileIfMissing(path); !made.ok()) return made;
  }
  if (absl::Status s = Init(); !s.ok()) return s;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the key file"));
  std::string hex;
  std::getline(in, hex);
  while (!hex.empty() && (hex.back() == '\r' || hex.back() == ' ')) hex.pop_back();
  std::string key(kDataKeyBytes, '\0');
  std::size_t len = 0;
  if (hex.size() != 2 * kDataKeyBytes ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(key.data()), key.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0 ||
      len != kDataKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a key file holds ", 2 * kDataKeyBytes, " hexadecimal characters"));
  }
  return key;
}

}  // namespace schakel::privacy
