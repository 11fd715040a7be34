#include "tools/schakelctl/ops_client.h"

#include <gtest/gtest.h>

namespace schakel::ctl {
namespace {

TEST(OpsClient, ARefusalIsTheErrorOpsGaveElseTheHttpStatus) {
  EXPECT_EQ(ErrorOf({409, R"({"error": "dead letter x was re-driven at 12:00"})"}),
            "dead letter x was re-driven at 12:00");
  EXPECT_EQ(ErrorOf({500, "Internal Server Error"}), "HTTP 500");
  EXPECT_EQ(ErrorOf({400, R"({"error": 3})"}), "HTTP 400");
  EXPECT_EQ(ErrorOf({403, R"(["error"])"}), "HTTP 403");
}

}  // namespace
}  // namespace schakel::ctl
