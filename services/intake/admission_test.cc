#include "services/intake/admission.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace schakel::intake {
namespace {

using std::chrono::milliseconds;

class AdmissionTest : public ::testing::Test {
 protected:
  Admission Make(AdmissionOptions options) {
    return Admission(options, [this] { return now_; });
  }
  void Answer(Admission& admission, int n) {
    for (int i = 0; i < n; ++i) admission.Answered();
  }

  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
};

TEST_F(AdmissionTest, WithoutAnswersYetTheFloorIsAdmitted) {
  Admission admission = Make({.target_wait = milliseconds(500), .floor = 4, .ceiling = 100});
  EXPECT_EQ(admission.Admit(3), std::nullopt);
  std::optional<Admission::Refusal> refused = admission.Admit(4);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->bound, 4u);
  EXPECT_FALSE(refused->at_ceiling);
  // No rate to go by: the longest wait it names.
  EXPECT_EQ(refused->retry_after, milliseconds(10000));
}

TEST_F(AdmissionTest, TheBoundIsWhatItAnswersInTheTargetWait) {
  Admission admission = Make({.target_wait = milliseconds(500), .floor = 4, .ceiling = 1000});
  // 20 answers in each tenth of a second; a second later the first tenth has left the window:
  // 180/s, so 90 may wait half a second.
  for (int tenth = 0; tenth < 10; ++tenth) {
    Answer(admission, 20);
    now_ += milliseconds(100);
  }
  EXPECT_DOUBLE_EQ(admission.rate(), 180.0) << "the first tenth has left the window";
  EXPECT_EQ(admission.bound(), 90u);
  EXPECT_EQ(admission.Admit(89), std::nullopt);
  std::optional<Admission::Refusal> refused = admission.Admit(90);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->bound, 90u);
  // 90 waiting at 180 answers a second: answered in half a second.
  EXPECT_EQ(refused->retry_after, milliseconds(500));
}

TEST_F(AdmissionTest, AQuietSecondForgetsTheRate) {
  Admission admission = Make({.target_wait = milliseconds(1000), .floor = 8, .ceiling = 1000});
  Answer(admission, 500);
  EXPECT_EQ(admission.bound(), 500u);
  now_ += milliseconds(1500);
  EXPECT_DOUBLE_EQ(admission.rate(), 0.0);
  EXPECT_EQ(admission.bound(), 8u);
}

TEST_F(AdmissionTest, TheCeilingHoldsHoweverFastItAnswers) {
  Admission admission = Make({.target_wait = milliseconds(1000), .floor = 8, .ceiling = 50});
  Answer(admission, 5000);
  std::optional<Admission::Refusal> refused = admission.Admit(50);
  ASSERT_TRUE(refused.has_value());
  EXPECT_TRUE(refused->at_ceiling);
  EXPECT_EQ(refused->bound, 50u);
  EXPECT_EQ(refused->retry_after, milliseconds(100)) << "50 at 5,000/s: 10 ms, at least 100";
}

}  // namespace
}  // namespace schakel::intake
