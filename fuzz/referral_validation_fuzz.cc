// Fuzzes what intake does with a SubmitReferral request before anything is published: the bytes as
// gRPC hands them to protobuf (strict: invalid UTF-8 fails the parse), and the same bytes read
// leniently (strings as raw bytes, the way a referral built in code can carry them), each checked
// by ValidateReferral against the example network. Never a crash; and whenever the validator
// accepts, what it promises holds: limits kept, every string strict UTF-8, no unknown fields, the
// referral survives the round trip through Kafka (a strict parse of its bytes) and the router can
// route it (never refuses it as invalid).
#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/lenient_referral.pb.h"
#include "libs/referral/validation.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/intake.pb.h"
#include "services/router/events.h"

namespace schakel::fuzz {
namespace {

void CopyUnknown(const google::protobuf::Message& from, google::protobuf::Message* to) {
  to->GetReflection()->MutableUnknownFields(to)->MergeFrom(
      from.GetReflection()->GetUnknownFields(from));
}

// The lenient parse's referral as a v1::Referral (setters do not check UTF-8).
v1::Referral FromLenient(const LenientReferral& in) {
  v1::Referral out;
  CopyUnknown(in, &out);
  if (in.has_client()) {
    v1::Client* client = out.mutable_client();
    client->set_client_code(in.client().client_code());
    client->set_bsn(in.client().bsn());
    CopyUnknown(in.client(), client);
  }
  for (const LenientNeed& need : in.needs()) {
    v1::NeedRequest* n = out.add_needs();
    n->set_code(need.code());
    n->set_details(need.details());
    CopyUnknown(need, n);
  }
  out.set_urgency(static_cast<v1::Urgency>(in.urgency()));
  out.set_region(in.region());
  for (const std::string& language : in.languages()) out.add_languages(language);
  if (in.has_sharing()) {
    v1::SharingPermission* sharing = out.mutable_sharing();
    sharing->set_basis(static_cast<v1::SharingBasis>(in.sharing().basis()));
    for (const std::string& org : in.sharing().organisations()) sharing->add_organisations(org);
    CopyUnknown(in.sharing(), sharing);
  }
  return out;
}

// Every string field in `message` and below, and whether anything carries unknown fields.
void Walk(const google::protobuf::Message& message, bool* unknown, bool* bad_utf8) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  if (reflection->GetUnknownFields(message).field_count() > 0) *unknown = true;
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    const bool repeated = field->is_repeated();
    const int n = repeated ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < n; ++i) {
      if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const std::string& s =
            repeated ? reflection->GetRepeatedStringReference(message, field, i, &scratch)
                     : reflection->GetStringReference(message, field, &scratch);
        if (!IsStrictUtf8(s)) *bad_utf8 = true;
      } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
        Walk(repeated ? reflection->GetRepeatedMessage(message, field, i)
                      : reflection->GetMessage(message, field),
             unknown, bad_utf8);
      }
    }
  }
}

std::size_t CodePoints(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// What an accepted referral must be.
void CheckAccepted(const v1::Referral& r, const routing::Policy& policy) {
  const routing::Network& network = policy.network();
  bool unknown = false;
  bool bad_utf8 = false;
  Walk(r, &unknown, &bad_utf8);
  if (bad_utf8) Fail("accepted a referral with a string that is not UTF-8");
  if (unknown) Fail("accepted a referral with unknown fields (they would be published)");
  if (r.needs().empty() || static_cast<std::size_t>(r.needs_size()) > referral::kMaxNeeds) {
    Fail("accepted a referral with a number of needs outside the limits");
  }
  for (const v1::NeedRequest& need : r.needs()) {
    if (!network.HasNeed(need.code())) Fail("accepted an unknown need");
    if (CodePoints(need.details()) > referral::kMaxDetailsChars) Fail("accepted details too long");
  }
  if (static_cast<std::size_t>(r.languages_size()) > referral::kMaxLanguages) {
    Fail("accepted too many languages");
  }
  if (static_cast<std::size_t>(r.sharing().organisations_size()) >
      referral::kMaxSharingOrganisations) {
    Fail("accepted too many organisations in the sharing permission");
  }
  if (!v1::Urgency_IsValid(r.urgency()) || r.urgency() == v1::URGENCY_UNSPECIFIED) {
    Fail("accepted an urgency that is not NORMAL or URGENT");
  }
  if (!v1::SharingBasis_IsValid(r.sharing().basis()) ||
      r.sharing().basis() == v1::SHARING_BASIS_UNSPECIFIED) {
    Fail("accepted a sharing basis that is not in the contract");
  }
  if (r.ByteSizeLong() > referral::kMaxReferralBytes) {
    Fail(absl::StrCat("accepted a referral of ", r.ByteSizeLong(), " bytes"));
  }
  // What intake publishes, the router reads back with a strict parse.
  v1::Referral reread;
  if (!reread.ParseFromString(r.SerializeAsString())) {
    Fail("an accepted referral does not parse again (the router could not read it)");
  }
  // And routes it: every need offered or unroutable, never the whole event refused.
  v1::ReferralSubmitted submitted;
  submitted.mutable_meta()->set_schema_version(1);
  submitted.mutable_meta()->set_referral_id("r-00000000000000000000fuzz");
  submitted.mutable_meta()->set_event_id("e-fuzz");
  submitted.set_referring_organisation(network.organisations.front().id);
  submitted.set_client_pseudonym("p-fuzz");
  *submitted.mutable_needs() = r.needs();
  submitted.set_urgency(r.urgency());
  submitted.set_region(r.region());
  *submitted.mutable_languages() = r.languages();
  *submitted.mutable_sharing() = r.sharing();
  std::vector<v1::AssignmentRequested> offers;
  std::vector<v1::AssignmentRequested> unroutable;
  absl::StatusOr<std::vector<router::Output>> routed =
      router::RouteReferral(policy, submitted, &offers, nullptr, &unroutable);
  if (!routed.ok()) {
    Fail(absl::StrCat("the router refused an accepted referral: ", routed.status().ToString()));
  }
  if (offers.size() + unroutable.size() != static_cast<std::size_t>(r.needs_size())) {
    Fail("the router did not decide every need of an accepted referral");
  }
  for (const router::Output& e : *routed) {
    const bool parses = e.topic == topology::kUnroutableTopic
                            ? v1::ReferralUnroutable().ParseFromString(*e.value)
                        : e.topic == topology::kStatusTopic
                            ? v1::AssignmentStatusChanged().ParseFromString(*e.value)
                            : v1::InboxEvent().ParseFromString(*e.value);
    if (!parses)
      Fail("the router wrote an event for an accepted referral its readers cannot parse");
  }
}

void Check(const v1::Referral& r, const routing::Policy& policy) {
  const absl::Status valid = referral::ValidateReferral(r, policy.network());
  if (valid.ok()) {
    CheckAccepted(r, policy);
    return;
  }
  if (valid.code() != absl::StatusCode::kInvalidArgument) {
    Fail("refused with a code other than INVALID_ARGUMENT");
  }
  // The error names the field it is about ("referral: " for the referral itself).
  if (valid.message().rfind("referral.", 0) != 0 && valid.message().rfind("referral: ", 0) != 0) {
    Fail("an error that does not name a field");
  }
  if (!IsStrictUtf8(std::string(valid.message()))) Fail("an error message that is not UTF-8");
}

}  // namespace
}  // namespace schakel::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  schakel::fuzz::SilenceLogs();  // protobuf logs each string it refuses as not UTF-8
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace schakel;
  static const routing::Policy* policy = new routing::Policy(fuzz::ExampleNetwork());
  if (size > 1 << 20) return -1;  // larger than intake's receive limit: gRPC refuses it first
  // As intake gets it from gRPC.
  v1::SubmitReferralRequest strict;
  if (strict.ParseFromArray(data, static_cast<int>(size))) fuzz::Check(strict.referral(), *policy);
  // As a referral could be built in code.
  fuzz::LenientSubmitReferralRequest lenient;
  if (lenient.ParseFromArray(data, static_cast<int>(size))) {
    fuzz::Check(fuzz::FromLenient(lenient.referral()), *policy);
  }
  return 0;
}
