#include "libs/referral/validation.h"

#include <google/protobuf/unknown_field_set.h>

#include <algorithm>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace schakel::referral {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  // An empty field: the referral itself.
  return absl::InvalidArgumentError(absl::StrCat("referral", field.empty() ? "" : ".",
                                                 std::string(field), ": ", std::string(problem)));
}

// Counts code points; false when the text is not valid UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF; what protobuf's parser demands of a string, so that what we
// accept can be published and read back).
bool CountUtf8(std::string_view text, std::size_t* count) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++n) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    char32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      return false;  // a continuation byte, C0/C1 (always overlong) or F5 and above
    }
    if (i + len > text.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    const char32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  *count = n;
  return true;
}

// A field the contract does not have (proto3 keeps it as an unknown field, and would copy it on).
// `field` empty: the referral itself.
absl::Status NoUnknownFields(const google::protobuf::Message& message, const std::string& field) {
  const google::protobuf::UnknownFieldSet& unknown =
      message.GetReflection()->GetUnknownFields(message);
  if (unknown.empty()) return absl::OkStatus();
  return Invalid(field, absl::StrCat("unknown field ", unknown.field(0).number(),
                                     " (not in the schakel.v1 contract this service knows)"));
}

bool IsPlainCode(std::string_view code) {
  return std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '/';
  });
}

absl::Status ValidateClient(const v1::Referral& r) {
  if (!r.has_client()) return Invalid("client", "is required");
  const v1::Client& client = r.client();
  if (absl::Status s = NoUnknownFields(client, "client"); !s.ok()) return s;
  if (client.client_code().empty() && client.bsn().empty()) {
    return Invalid("client", "needs a client_code or a bsn");
  }
  if (!client.client_code().empty()) {
    if (client.client_code().size() > kMaxClientCodeChars || !IsPlainCode(client.client_code())) {
      return Invalid("client.client_code", absl::StrCat("must be 1 to ", kMaxClientCodeChars,
                                                        " letters, digits or '-', '_', '.', '/'"));
    }
  }
  if (!client.bsn().empty() && !IsValidBsn(client.bsn())) {
    return Invalid("client.bsn", "is not a valid BSN (nine digits passing the 11-test)");
  }
  for (const auto& [field, text, limit] :
       {std::tuple{"client.name", &client.name(), kMaxClientNameChars},
        std::tuple{"client.contact", &client.contact(), kMaxClientContactChars}}) {
    std::size_t chars = 0;
    if (!CountUtf8(*text, &chars)) return Invalid(field, "is not valid UTF-8");
    if (chars > limit) return Invalid(field, absl::StrCat("at most ", limit, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNeeds(const v1::Referral& r, const routing::Network& network) {
  if (r.needs().empty()) return Invalid("needs", "at least one need is required");
  if (static_cast<std::size_t>(r.needs_size()) > kMaxNeeds) {
    return Invalid("needs", absl::StrCat("at most ", kMaxNeeds, " needs"));
  }
  std::set<std::string> seen;
  for (int i = 0; i < r.needs_size(); ++i) {
    const v1::NeedRequest& need = r.needs(i);
    const std::string field = absl::StrCat("needs[", i, "]");
    if (absl::Status s = NoUnknownFields(need, field); !s.ok()) return s;
    if (need.code().empty()) return Invalid(field + ".code", "is required");
    // A need code is not personal; an unknown one is echoed only when it is short and plain.
    if (!network.HasNeed(need.code())) {
      if (need.code().size() <= 40 && IsPlainCode(need.code())) {
        return Invalid(field + ".code", absl::StrCat("unknown need '", need.code(), "'"));
      }
      return Invalid(field + ".code", "unknown need");
    }
    if (!seen.insert(need.code()).second) {
      return Invalid(field + ".code", absl::StrCat("need '", need.code(), "' appears twice"));
    }
    std::size_t chars = 0;
    if (!CountUtf8(need.details(), &chars))
      return Invalid(field + ".details", "is not valid UTF-8");
    if (chars > kMaxDetailsChars) {
      return Invalid(field + ".details", absl::StrCat("at most ", kMaxDetailsChars, " characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSharing(const v1::Referral& r, const routing::Network& network) {
  if (!r.has_sharing()) return Invalid("sharing", "the client's sharing permission is required");
  const v1::SharingPermission& sharing = r.sharing();
  if (absl::Status s = NoUnknownFields(sharing, "sharing"); !s.ok()) return s;
  if (sharing.basis() == v1::SHARING_BASIS_UNSPECIFIED ||
      !v1::SharingBasis_IsValid(sharing.basis())) {
    return Invalid("sharing.basis", "must be CONSENT, LEGAL_OBLIGATION or VITAL_INTEREST");
  }
  if (sharing.organisations().empty()) {
    return Invalid("sharing.organisations", "must name at least one organisation");
  }
  if (static_cast<std::size_t>(sharing.organisations_size()) > kMaxSharingOrganisations) {
    return Invalid("sharing.organisations",
                   absl::StrCat("at most ", kMaxSharingOrganisations, " organisations"));
  }
  for (int i = 0; i < sharing.organisations_size(); ++i) {
    const std::string& org = sharing.organisations(i);
    if (network.FindOrganisation(org) == nullptr) {
      return Invalid(absl::StrCat("sharing.organisations[", i, "]"),
                     org.size() <= 63 && IsPlainCode(org)
                         ? absl::StrCat("unknown organisation '", org, "'")
                         : "unknown organisation");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidBsn(std::string_view bsn) {
  if (bsn.size() != 9 ||
      !std::all_of(bsn.begin(), bsn.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  int sum = 0;
  for (int i = 0; i < 8; ++i) sum += (9 - i) * (bsn[i] - '0');
  sum -= bsn[8] - '0';
  return sum % 11 == 0 && bsn != "000000000";
}

absl::Status ValidateReferral(const v1::Referral& r, const routing::Network& network) {
  if (absl::Status s = NoUnknownFields(r, ""); !s.ok()) return s;
  if (absl::Status s = ValidateClient(r); !s.ok()) return s;
  if (absl::Status s = ValidateNeeds(r, network); !s.ok()) return s;
  if (r.urgency() == v1::URGENCY_UNSPECIFIED || !v1::Urgency_IsValid(r.urgency())) {
    return Invalid("urgency", "must be NORMAL or URGENT");
  }
  if (r.region().empty()) return Invalid("region", "is required");
  if (!network.HasRegion(r.region())) {
    return Invalid("region", r.region().size() <= 63 && IsPlainCode(r.region())
                                 ? absl::StrCat("unknown region '", r.region(), "'")
                                 : "unknown region");
  }
  if (static_cast<std::size_t>(r.languages_size()) > kMaxLanguages) {
    return Invalid("languages", absl::StrCat("at most ", kMaxLanguages));
  }
  for (int i = 0; i < r.languages_size(); ++i) {
    if (!network.HasLanguage(r.languages(i))) {
      return Invalid(absl::StrCat("languages[", i, "]"),
                     "not a language of this network (ISO 639-1 codes from the network file)");
    }
  }
  return ValidateSharing(r, network);
}

}  // namespace schakel::referral
