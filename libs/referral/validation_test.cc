#include "libs/referral/validation.h"

#include <gmock/gmock.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>

#include <functional>

namespace schakel::referral {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

routing::Network Example() {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

// The seed story: a woman leaving the work needs debt help, an income benefit and cheaper housing.
v1::Referral Seed() {
  v1::Referral r;
  r.mutable_client()->set_client_code("TW-2020-0413");
  r.mutable_client()->set_bsn("111222333");
  r.add_needs()->set_code("debt");
  r.add_needs()->set_code("income");
  r.add_needs()->set_code("housing");
  r.mutable_needs(2)->set_details("Zoekt goedkopere woonruimte");
  r.set_urgency(v1::URGENCY_NORMAL);
  r.set_region("groningen-stad");
  r.add_languages("nl");
  r.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"gemeente", "leger-des-heils", "mjd"})
    r.mutable_sharing()->add_organisations(org);
  return r;
}

TEST(ValidationTest, SeedReferralIsValid) {
  EXPECT_TRUE(ValidateReferral(Seed(), Example()).ok()) << ValidateReferral(Seed(), Example());
}

TEST(ValidationTest, ClientCodeAloneIsEnough) {
  v1::Referral r = Seed();
  r.mutable_client()->clear_bsn();
  EXPECT_TRUE(ValidateReferral(r, Example()).ok());
}

struct Case {
  std::string name;
  std::function<void(v1::Referral&)> spoil;
  std::string message;  // the exact error message
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class InvalidReferralTest : public ::testing::TestWithParam<Case> {};

TEST_P(InvalidReferralTest, NamesTheFieldAndWhy) {
  v1::Referral r = Seed();
  GetParam().spoil(r);
  absl::Status s = ValidateReferral(r, Example());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), GetParam().message);
  // Never echo personal data.
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("TW-2020")));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("11122")));
}

google::protobuf::UnknownFieldSet* Unknown(google::protobuf::Message& message) {
  return message.GetReflection()->MutableUnknownFields(&message);
}

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    All, InvalidReferralTest,
    ::testing::Values(
        Case{"NoClient", [](v1::Referral& r) { r.clear_client(); }, "referral.client: is required"},
        Case{"NoClientIdentity", [](v1::Referral& r) { r.mutable_client()->Clear(); },
             "referral.client: needs a client_code or a bsn"},
        Case{"BadBsn", [](v1::Referral& r) { r.mutable_client()->set_bsn("111222334"); },
             "referral.client.bsn: is not a valid BSN (nine digits passing the 11-test)"},
        Case{"LongName",
             [](v1::Referral& r) { r.mutable_client()->set_name(std::string(201, 'a')); },
             "referral.client.name: at most 200 characters"},
        Case{"LongContact",
             [](v1::Referral& r) { r.mutable_client()->set_contact(std::string(501, 'a')); },
             "referral.client.contact: at most 500 characters"},
        Case{"NameNotUtf8", [](v1::Referral& r) { r.mutable_client()->set_name("Ann\xc3"); },
             "referral.client.name: is not valid UTF-8"},
        Case{"BadClientCode",
             [](v1::Referral& r) { r.mutable_client()->set_client_code("TW 2020"); },
             "referral.client.client_code: must be 1 to 64 letters, digits or '-', '_', '.', '/'"},
        Case{"NoNeeds", [](v1::Referral& r) { r.clear_needs(); },
             "referral.needs: at least one need is required"},
        Case{"UnknownNeed", [](v1::Referral& r) { r.mutable_needs(1)->set_code("yoga"); },
             "referral.needs[1].code: unknown need 'yoga'"},
        Case{"UnknownNeedNotEchoedWhenOdd",
             [](v1::Referral& r) { r.mutable_needs(0)->set_code("Anna de Vries"); },
             "referral.needs[0].code: unknown need"},
        Case{"DuplicateNeed", [](v1::Referral& r) { r.mutable_needs(2)->set_code("debt"); },
             "referral.needs[2].code: need 'debt' appears twice"},
        Case{"DetailsTooLong",
             [](v1::Referral& r) { r.mutable_needs(0)->set_details(Repeat("é", 2001)); },
             "referral.needs[0].details: at most 2000 characters"},
        Case{"DetailsNotUtf8", [](v1::Referral& r) { r.mutable_needs(0)->set_details("\xff\xfe"); },
             "referral.needs[0].details: is not valid UTF-8"},
        // Found by fuzz/referral_validation_fuzz: forms that are not UTF-8 although their bytes
        // have its shape (protobuf refuses them when the router parses the event).
        Case{"DetailsOverlong",
             [](v1::Referral& r) { r.mutable_needs(0)->set_details("schuld \xe0\x82\xac 4.000"); },
             "referral.needs[0].details: is not valid UTF-8"},
        Case{"DetailsOverlongTwoBytes",
             [](v1::Referral& r) { r.mutable_needs(0)->set_details("\xc0\x80"); },
             "referral.needs[0].details: is not valid UTF-8"},
        Case{"DetailsSurrogate",
             [](v1::Referral& r) { r.mutable_needs(0)->set_details("\xed\xa0\x80"); },
             "referral.needs[0].details: is not valid UTF-8"},
        Case{"DetailsAboveUnicode",
             [](v1::Referral& r) { r.mutable_needs(0)->set_details("\xf4\x90\x80\x80"); },
             "referral.needs[0].details: is not valid UTF-8"},
        Case{"DetailsTruncated",
             [](v1::Referral& r) { r.mutable_needs(0)->set_details("caf\xc3"); },
             "referral.needs[0].details: is not valid UTF-8"},
        Case{"NoUrgency", [](v1::Referral& r) { r.clear_urgency(); },
             "referral.urgency: must be NORMAL or URGENT"},
        Case{"UnknownUrgency", [](v1::Referral& r) { r.set_urgency(static_cast<v1::Urgency>(7)); },
             "referral.urgency: must be NORMAL or URGENT"},
        Case{"NoRegion", [](v1::Referral& r) { r.clear_region(); }, "referral.region: is required"},
        Case{"UnknownRegion", [](v1::Referral& r) { r.set_region("amsterdam"); },
             "referral.region: unknown region 'amsterdam'"},
        Case{"UnknownLanguage", [](v1::Referral& r) { r.add_languages("xx"); },
             "referral.languages[1]: not a language of this network (ISO 639-1 codes from the "
             "network "
             "file)"},
        Case{"NoSharing", [](v1::Referral& r) { r.clear_sharing(); },
             "referral.sharing: the client's sharing permission is required"},
        Case{"NoBasis", [](v1::Referral& r) { r.mutable_sharing()->clear_basis(); },
             "referral.sharing.basis: must be CONSENT, LEGAL_OBLIGATION or VITAL_INTEREST"},
        Case{"NobodyMayReceive",
             [](v1::Referral& r) { r.mutable_sharing()->clear_organisations(); },
             "referral.sharing.organisations: must name at least one organisation"},
        Case{"UnknownOrganisation",
             [](v1::Referral& r) { r.mutable_sharing()->add_organisations("cjib"); },
             "referral.sharing.organisations[3]: unknown organisation 'cjib'"},
        // Bad input and abuse: repeated fields beyond their limits, enum values the contract does
        // not have (proto3 keeps them as numbers), fields it does not have (kept as unknown fields,
        // and copied into the published event were they let through).
        Case{"TooManyNeeds",
             [](v1::Referral& r) {
               for (int i = 0; i < 18; ++i) r.add_needs()->set_code("debt");
             },
             "referral.needs: at most 20 needs"},
        Case{"TooManyLanguages",
             [](v1::Referral& r) {
               for (int i = 0; i < 10; ++i) r.add_languages("en");
             },
             "referral.languages: at most 10"},
        Case{"TooManyOrganisations",
             [](v1::Referral& r) {
               for (int i = 0; i < 48; ++i) r.mutable_sharing()->add_organisations("mjd");
             },
             "referral.sharing.organisations: at most 50 organisations"},
        Case{"UnknownSharingBasis",
             [](v1::Referral& r) { r.mutable_sharing()->set_basis(static_cast<v1::SharingBasis>(9)); },
             "referral.sharing.basis: must be CONSENT, LEGAL_OBLIGATION or VITAL_INTEREST"},
        Case{"NegativeUrgency",
             [](v1::Referral& r) { r.set_urgency(static_cast<v1::Urgency>(-1)); },
             "referral.urgency: must be NORMAL or URGENT"},
        Case{"UnknownFieldInReferral",
             [](v1::Referral& r) { Unknown(r)->AddVarint(99, 1); },
             "referral: unknown field 99 (not in the schakel.v1 contract this service knows)"},
        Case{"UnknownFieldInClient",
             [](v1::Referral& r) {
               Unknown(*r.mutable_client())->AddLengthDelimited(3, "Anna");
             },
             "referral.client: unknown field 3 (not in the schakel.v1 contract this service "
             "knows)"},
        Case{"UnknownFieldInNeed",
             [](v1::Referral& r) {
               // A group nested in a group: what a "deeply nested" field can be in this contract.
               google::protobuf::UnknownFieldSet* group =
                   Unknown(*r.mutable_needs(1))->AddGroup(7);
               group->AddGroup(8)->AddFixed32(9, 1);
             },
             "referral.needs[1]: unknown field 7 (not in the schakel.v1 contract this service "
             "knows)"},
        Case{"UnknownFieldInSharing",
             [](v1::Referral& r) {
               Unknown(*r.mutable_sharing())->AddLengthDelimited(3, "cjib");
             },
             "referral.sharing: unknown field 3 (not in the schakel.v1 contract this service "
             "knows)"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(ValidationTest, DetailsInAnyScriptAreValid) {
  v1::Referral r = Seed();
  // Two, three and four bytes per character; 2000 characters is the limit, not 2000 bytes.
  r.mutable_needs(0)->set_details("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe0\xb8\x81");
  EXPECT_TRUE(ValidateReferral(r, Example()).ok()) << ValidateReferral(r, Example());
  r.mutable_needs(0)->set_details(Repeat("\xf0\x9f\x98\x80", 2000));
  EXPECT_TRUE(ValidateReferral(r, Example()).ok()) << ValidateReferral(r, Example());
}

TEST(BsnTest, ElevenTest) {
  EXPECT_TRUE(IsValidBsn("111222333"));
  EXPECT_TRUE(IsValidBsn("123456782"));
  EXPECT_FALSE(IsValidBsn("123456789"));
  EXPECT_FALSE(IsValidBsn("12345678"));
  EXPECT_FALSE(IsValidBsn("12345678a"));
  EXPECT_FALSE(IsValidBsn("000000000"));
}

}  // namespace
}  // namespace schakel::referral
