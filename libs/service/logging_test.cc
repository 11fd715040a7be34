#include "libs/service/logging.h"

#include <gtest/gtest.h>

namespace schakel::service {
namespace {

TEST(LoggingTest, JsonEscapeKeepsTheLineParseable) {
  EXPECT_EQ(JsonEscape(R"(need "debt" \ ok)"), R"(need \"debt\" \\ ok)");
  EXPECT_EQ(JsonEscape("a\nb\tc\x01"), "a\\nb\\tc\\u0001");
  EXPECT_EQ(JsonEscape("café"), "café");
}

}  // namespace
}  // namespace schakel::service
