#include "libs/service/identity.h"

#include <grpcpp/security/auth_context.h>
#include <sodium.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace schakel::service {
namespace {

std::shared_ptr<const Authenticator>& Current() {
  static std::shared_ptr<const Authenticator> authenticator;
  return authenticator;
}

constexpr std::string_view kSuffix = ".schakel";

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool FromHex(std::string_view hex, std::array<unsigned char, 32>* out) {
  if (hex.size() != 64) return false;
  size_t written = 0;
  return sodium_hex2bin(out->data(), out->size(), hex.data(), hex.size(), nullptr, &written,
                        nullptr) == 0 &&
         written == out->size();
}

}  // namespace

void UseAuthenticator(std::shared_ptr<const Authenticator> authenticator) {
  std::atomic_store(&Current(), std::move(authenticator));
}

Caller Identify(const grpc::ServerContextBase& context) {
  const std::shared_ptr<const Authenticator> authenticator = std::atomic_load(&Current());
  return authenticator ? authenticator->Identify(context) : Caller{};
}

std::string CallerOrganisation(const grpc::ServerContextBase& context) {
  const Caller caller = Identify(context);
  return caller.kind == Caller::Kind::kOrganisation ? caller.id : std::string();
}

Caller CallerFromCommonName(std::string_view common_name) {
  if (common_name.size() <= kSuffix.size() ||
      common_name.substr(common_name.size() - kSuffix.size()) != kSuffix) {
    return {};
  }
  const std::string_view rest = common_name.substr(0, common_name.size() - kSuffix.size());
  const std::size_t dot = rest.rfind('.');
  if (dot == std::string_view::npos) return {};
  const std::string_view id = rest.substr(0, dot);
  const std::string_view kind = rest.substr(dot + 1);
  if (!ValidId(id)) return {};
  if (kind == "organisation") return {Caller::Kind::kOrganisation, std::string(id)};
  if (kind == "operator") return {Caller::Kind::kOperator, std::string(id)};
  if (kind == "service") return {Caller::Kind::kService, std::string(id)};
  return {};
}

std::string CommonNameOf(const Caller& caller) {
  switch (caller.kind) {
    case Caller::Kind::kOrganisation:
      return caller.id + ".organisation.schakel";
    case Caller::Kind::kOperator:
      return caller.id + ".operator.schakel";
    case Caller::Kind::kService:
      return caller.id + ".service.schakel";
    case Caller::Kind::kNobody:
      break;
  }
  return {};
}

absl::StatusOr<std::shared_ptr<TlsAuthenticator>> TlsAuthenticator::Create(
    const std::string& tokens_file) {
  if (sodium_init() < 0) return absl::InternalError("libsodium could not start");
  auto self = std::shared_ptr<TlsAuthenticator>(new TlsAuthenticator());
  if (tokens_file.empty()) return self;
  std::ifstream in(tokens_file);
  if (!in) return absl::NotFoundError(absl::StrCat("tokens file ", tokens_file, " cannot be read"));
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (const std::size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string organisation;
    std::string hex;
    std::string more;
    if (!(words >> organisation)) continue;  // blank or comment
    Token token;
    if (!(words >> hex) || (words >> more) || !ValidId(organisation) ||
        !FromHex(hex, &token.hash)) {
      // The line itself is not repeated: it may hold a token pasted by mistake.
      return absl::InvalidArgumentError(
          absl::StrCat(tokens_file, ":", number,
                       ": expected \"<organisation id> <sha-256 of the token, 64 hex>\""));
    }
    token.organisation = organisation;
    self->tokens_.push_back(std::move(token));
  }
  return self;
}

std::string TlsAuthenticator::TokenHash(std::string_view token) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> hash{};
  crypto_hash_sha256(hash.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  std::string hex(hash.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), hash.data(), hash.size());
  hex.pop_back();
  return hex;
}

Caller TlsAuthenticator::Identify(const grpc::ServerContextBase& context) const {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth && auth->IsPeerAuthenticated()) {
    // gRPC verified the chain against our certificate authority before the call arrived.
    const std::vector<grpc::string_ref> names = auth->FindPropertyValues("x509_common_name");
    if (names.empty()) return {};
    return CallerFromCommonName(std::string_view(names.front().data(), names.front().size()));
  }
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  const std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() || value.substr(0, kBearer.size()) != kBearer) return {};
  const std::string_view token = value.substr(kBearer.size());
  std::array<unsigned char, crypto_hash_sha256_BYTES> hash{};
  crypto_hash_sha256(hash.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  for (const Token& t : tokens_) {
    if (sodium_memcmp(t.hash.data(), hash.data(), hash.size()) == 0) {
      return {Caller::Kind::kOrganisation, t.organisation};
    }
  }
  return {};
}

}  // namespace schakel::service
