#include "libs/privacy/pseudonym.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace schakel::privacy {

absl::StatusOr<Pseudonymiser> Pseudonymiser::FromHexKey(std::string_view hex) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ')) {
    hex.remove_suffix(1);
  }
  std::array<unsigned char, kKeyBytes> key{};
  std::size_t len = 0;
  if (hex.size() != 2 * kKeyBytes ||
      sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
      len != kKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("pseudonym key must be ", 2 * kKeyBytes, " hexadecimal characters"));
  }
  return Pseudonymiser(key);
}

absl::StatusOr<Pseudonymiser> Pseudonymiser::FromKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the pseudonym key file"));
  std::string hex;
  std::getline(in, hex);
  absl::StatusOr<Pseudonymiser> p = FromHexKey(hex);
  if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", p.status().message()));
  return p;
}

absl::Status Pseudonymiser::CreateKeyFileIfMissing(const std::string& path) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::OkStatus();
    return absl::InternalError(
        absl::StrCat(path, ": cannot create key file: ", std::strerror(errno)));
  }
  std::array<unsigned char, kKeyBytes> key;
  randombytes_buf(key.data(), key.size());
  std::array<char, 2 * kKeyBytes + 1> hex;
  sodium_bin2hex(hex.data(), hex.size(), key.data(), key.size());
  sodium_memzero(key.data(), key.size());
  std::string line(hex.data(), 2 * kKeyBytes);
  line += '\n';
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) return absl::InternalError(absl::StrCat(path, ": cannot write key file"));
  return absl::OkStatus();
}

std::string Pseudonymiser::Hash(std::string_view domain, std::string_view value) const {
  crypto_generichash_state state;
  crypto_generichash_init(&state, key_.data(), key_.size(), 16);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(domain.data()),
                            domain.size());
  const unsigned char separator = 0;
  crypto_generichash_update(&state, &separator, 1);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(value.data()),
                            value.size());
  std::array<unsigned char, 16> out;
  crypto_generichash_final(&state, out.data(), out.size());
  std::array<char, 33> hex;
  sodium_bin2hex(hex.data(), hex.size(), out.data(), out.size());
  return "p-" + std::string(hex.data(), 32);
}

std::string Pseudonymiser::ForBsn(std::string_view bsn) const { return Hash("bsn", bsn); }

std::string Pseudonymiser::ForClientCode(std::string_view referring_organisation,
                                         std::string_view client_code) const {
  return Hash("code:" + std::string(referring_organisation), client_code);
}

}  // namespace schakel::privacy
