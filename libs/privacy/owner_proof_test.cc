#include "libs/privacy/owner_proof.h"

#include <gtest/gtest.h>

#include <string>

namespace schakel::privacy {
namespace {

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string FixedToken() {
  std::string token;
  for (int i = 1; i <= 32; ++i) token.push_back(static_cast<char>(i));
  return token;
}

v1::AssignmentStatusChanged Declined() {
  v1::AssignmentStatusChanged change;
  change.mutable_meta()->set_referral_id("r-1");
  change.mutable_meta()->set_assignment_id("a-r-1-1");
  change.set_version(3);
  change.set_from_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  change.set_to_status(v1::ASSIGNMENT_STATUS_REJECTED);
  change.set_organisation("mjd");
  change.set_by("mjd");
  change.set_forward_to("ggd");
  return change;
}

v1::ForwardRequested Forward() {
  v1::ForwardRequested forward;
  forward.mutable_meta()->set_referral_id("r-1");
  forward.mutable_meta()->set_assignment_id("a-r-1-1");
  forward.set_from_organisation("mjd");
  forward.set_to_organisation("ggd");
  return forward;
}

// The encodings and proofs below were computed independently (Python: struct.pack('>I', len) +
// bytes per item; hmac.new(token, input, sha512).digest()[:32]): changing them breaks every proof
// in flight, so they change only with a new domain ("...v2").
TEST(OwnerProof, PinsTheCanonicalBytesOfAStatusChange) {
  EXPECT_EQ(Hex(OwnerProofInput(Declined())),
            "00000016736368616b656c2e6f776e65722d70726f6f662e7631"  // domain
            "00000006737461747573"                                  // "status"
            "00000003722d31"                                        // referral id
            "00000007612d722d312d31"                                // assignment id
            "000000080000000000000003"                              // version 3
            "0000000400000002"                                      // from RECEIVED
            "0000000400000004"                                      // to REJECTED
            "000000036d6a64"                                        // organisation
            "000000036d6a64"                                        // by
            "00000003676764");                                      // forward_to
  absl::StatusOr<std::string> proof = ProveOwner(FixedToken(), Declined());
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_EQ(Hex(*proof), "9faf7fc7f458d2172338f6e2773a2b51516722cfb512792380c7a9f1a9aacf80");
}

TEST(OwnerProof, PinsTheCanonicalBytesOfAForwardRequest) {
  EXPECT_EQ(Hex(OwnerProofInput(Forward())),
            "00000016736368616b656c2e6f776e65722d70726f6f662e7631"  // domain
            "00000007666f7277617264"                                // "forward"
            "00000003722d31"                                        // referral id
            "00000007612d722d312d31"                                // assignment id
            "000000036d6a64"                                        // from organisation
            "00000003676764");                                      // to organisation
  absl::StatusOr<std::string> proof = ProveOwner(FixedToken(), Forward());
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_EQ(Hex(*proof), "873c1533c39c5c207a295c43e839cf9c3b3ff70a9240805788f1511d4ed4242d");
}

TEST(OwnerProof, VerifiesOnlyWithTheTokenAndTheEventItWasMadeFor) {
  const std::string token = NewOwnerToken();
  ASSERT_EQ(token.size(), kOwnerTokenBytes);
  EXPECT_NE(token, NewOwnerToken());
  v1::AssignmentStatusChanged change = Declined();
  EXPECT_FALSE(VerifyOwner(token, change));  // no proof at all
  change.set_owner_proof(*ProveOwner(token, change));
  EXPECT_TRUE(VerifyOwner(token, change));
  EXPECT_FALSE(VerifyOwner(NewOwnerToken(), change));
  EXPECT_FALSE(VerifyOwner(std::string(), change));

  // Every field the proof covers: another value does not verify.
  auto changed = [&](auto edit) {
    v1::AssignmentStatusChanged copy = change;
    edit(copy);
    return VerifyOwner(token, copy);
  };
  EXPECT_FALSE(changed([](auto& c) { c.mutable_meta()->set_referral_id("r-2"); }));
  EXPECT_FALSE(changed([](auto& c) { c.mutable_meta()->set_assignment_id("a-r-1-0"); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_version(4); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_to_status(v1::ASSIGNMENT_STATUS_ACCEPTED); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_organisation("ggd"); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_by("network"); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_forward_to("leger"); }));
  EXPECT_FALSE(changed([](auto& c) { c.set_owner_proof(std::string(kOwnerProofBytes, 'x')); }));
  // Items are length-prefixed: moving a byte from one field to the next changes the input.
  EXPECT_FALSE(changed([](auto& c) {
    c.set_organisation("mj");
    c.set_by("dmjd");
  }));
}

TEST(OwnerProof, AForwardProofIsNotAStatusProof) {
  const std::string token = NewOwnerToken();
  v1::ForwardRequested forward = Forward();
  forward.set_owner_proof(*ProveOwner(token, forward));
  EXPECT_TRUE(VerifyOwner(token, forward));
  v1::ForwardRequested elsewhere = forward;
  elsewhere.set_to_organisation("leger");
  EXPECT_FALSE(VerifyOwner(token, elsewhere));
  v1::AssignmentStatusChanged change = Declined();
  change.set_owner_proof(forward.owner_proof());
  EXPECT_FALSE(VerifyOwner(token, change));
}

TEST(OwnerProof, RefusesATokenOfTheWrongSize) {
  EXPECT_EQ(ProveOwner("short", Declined()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ProveOwner(std::string(33, 'k'), Forward()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace schakel::privacy
