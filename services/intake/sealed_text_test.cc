#include "services/intake/sealed_text.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>

#include "libs/privacy/sealed.h"

namespace schakel::intake {
namespace {

constexpr char kReferral[] = "r-00000000000000000000000a";
constexpr char kAssignment[] = "a-00000000000000000000000a-0";

// The key service behind intake's own interface: one key per key id, answered at once; counts the
// asks.
class CountingKeys final : public privacy::ClientKeySource {
 public:
  void ClientKey(const std::string&, const std::string&, const v1::SharingPermission*,
                 std::chrono::system_clock::time_point, Done done) override {
    done(absl::UnimplementedError("not asked here"));
  }
  void ReferralKey(const std::string& /*referral_id*/, const std::string& key_id,
                   std::chrono::system_clock::time_point, Done done) override {
    ++asks;
    if (erased.count(key_id) > 0) return done(absl::FailedPreconditionError("erased"));
    const auto it = keys.find(key_id);
    if (it == keys.end()) return done(absl::PermissionDeniedError("no"));
    done(it->second);
  }
  v1::DataKey Make(const std::string& key_id) {
    v1::DataKey key;
    key.set_key_id(key_id);
    key.set_key(privacy::NewDataKey());
    keys[key_id] = key;
    return key;
  }
  int asks = 0;
  std::map<std::string, v1::DataKey> keys;
  std::set<std::string> erased;
};

// A referral whose need has one change with a reason sealed with `key`.
v1::ReferralStatus WithSealedReason(const v1::DataKey& key, const std::string& reason) {
  v1::ReferralStatus referral;
  referral.set_referral_id(kReferral);
  v1::NeedStatus* need = referral.add_needs();
  need->set_assignment_id(kAssignment);
  v1::ReferralEvent* event = need->add_history();
  event->set_assignment_id(kAssignment);
  event->set_version(3);
  *event->mutable_sealed_reason() = *privacy::Seal(
      key.key_id(), key.key(), privacy::StatusReasonContext(kReferral, kAssignment, 3), reason);
  return referral;
}

SealedTextOpener::Opened OpenNow(SealedTextOpener& opener, v1::ReferralStatus referral) {
  std::optional<SealedTextOpener::Opened> result;
  opener.Open({std::move(referral)},
              [&](SealedTextOpener::Opened opened) { result = std::move(opened); });
  EXPECT_TRUE(result.has_value()) << "the fake answers at once";
  return result ? *std::move(result) : SealedTextOpener::Opened{};
}

TEST(SealedTextOpenerTest, KeepsAReferralsKeyForAShortWhileOnly) {
  CountingKeys keys;
  const v1::DataKey key = keys.Make("k-1");
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  SealedTextOpener opener(keys, {.keep_keys_for = std::chrono::seconds(30)}, [&] { return now; });

  SealedTextOpener::Opened first = OpenNow(opener, WithSealedReason(key, "wacht op papieren"));
  EXPECT_EQ(first.referrals.at(0).needs(0).history(0).reason(), "wacht op papieren");
  EXPECT_EQ(first.opened.at(kReferral), std::vector<std::string>{kAssignment});
  EXPECT_EQ(keys.asks, 1);
  now += std::chrono::seconds(29);
  OpenNow(opener, WithSealedReason(key, "wacht op papieren"));
  EXPECT_EQ(keys.asks, 1) << "kept";
  now += std::chrono::seconds(2);
  OpenNow(opener, WithSealedReason(key, "wacht op papieren"));
  EXPECT_EQ(keys.asks, 2) << "asked again after 30 s";
  now += std::chrono::seconds(31);
  OpenNow(opener, v1::ReferralStatus());  // expired keys go, even when nothing is opened
  EXPECT_EQ(opener.kept(), 0u);
}

TEST(SealedTextOpenerTest, AnErasureDropsTheReferralsKeptKeysAndReadsErased) {
  CountingKeys keys;
  const v1::DataKey old_key = keys.Make("k-old");
  const v1::DataKey key = keys.Make("k-1");
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  SealedTextOpener opener(keys, {}, [&] { return now; });
  OpenNow(opener, WithSealedReason(key, "wacht op papieren"));
  ASSERT_EQ(opener.kept(), 1u);
  // The client is erased; the next answer that says so drops every key kept for the referral.
  keys.erased = {"k-old", "k-1"};
  SealedTextOpener::Opened erased = OpenNow(opener, WithSealedReason(old_key, "oud"));
  const v1::ReferralEvent& event = erased.referrals.at(0).needs(0).history(0);
  EXPECT_EQ(event.reason(), "(erased)");
  EXPECT_EQ(event.text(), v1::SEALED_TEXT_ERASED);
  EXPECT_FALSE(event.has_sealed_reason());
  EXPECT_TRUE(erased.opened.empty());
  SealedTextOpener::Opened after = OpenNow(opener, WithSealedReason(key, "wacht op papieren"));
  EXPECT_EQ(after.referrals.at(0).needs(0).history(0).reason(), "(erased)")
      << "the kept k-1 was dropped and the key service asked again";
  EXPECT_EQ(keys.asks, 3);
}

TEST(SealedTextOpenerTest, ATextMovedToAnotherChangeDoesNotOpen) {
  CountingKeys keys;
  const v1::DataKey key = keys.Make("k-1");
  SealedTextOpener opener(keys);
  v1::ReferralStatus moved = WithSealedReason(key, "wacht op papieren");
  moved.mutable_needs(0)->mutable_history(0)->set_version(4);
  SealedTextOpener::Opened opened = OpenNow(opener, moved);
  EXPECT_EQ(opened.referrals.at(0).needs(0).history(0).reason(), "(not available now)");
  EXPECT_EQ(opened.referrals.at(0).needs(0).history(0).text(), v1::SEALED_TEXT_UNAVAILABLE);
  EXPECT_TRUE(opened.opened.empty());
}

}  // namespace
}  // namespace schakel::intake
