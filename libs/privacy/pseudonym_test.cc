#include "libs/privacy/pseudonym.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>

namespace schakel::privacy {
namespace {

constexpr char kKeyA[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kKeyB[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

TEST(PseudonymTest, SameInputSameKeySamePseudonym) {
  Pseudonymiser p = *Pseudonymiser::FromHexKey(kKeyA);
  EXPECT_EQ(p.ForBsn("111222333"), p.ForBsn("111222333"));
  EXPECT_NE(p.ForBsn("111222333"), p.ForBsn("123456782"));
  EXPECT_TRUE(std::regex_match(p.ForBsn("111222333"), std::regex("^p-[0-9a-f]{32}$")));
}

TEST(PseudonymTest, DependsOnTheKey) {
  EXPECT_NE(Pseudonymiser::FromHexKey(kKeyA)->ForBsn("111222333"),
            Pseudonymiser::FromHexKey(kKeyB)->ForBsn("111222333"));
}

TEST(PseudonymTest, ClientCodesAreScopedToTheReferrer) {
  Pseudonymiser p = *Pseudonymiser::FromHexKey(kKeyA);
  EXPECT_NE(p.ForClientCode("mjd", "C-1"), p.ForClientCode("ggd", "C-1"));
  EXPECT_EQ(p.ForClientCode("mjd", "C-1"), p.ForClientCode("mjd", "C-1"));
  // A client code that happens to look like a BSN does not collide with that BSN.
  EXPECT_NE(p.ForClientCode("mjd", "111222333"), p.ForBsn("111222333"));
}

TEST(PseudonymTest, BadKeysAreRefused) {
  EXPECT_EQ(Pseudonymiser::FromHexKey("abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Pseudonymiser::FromKeyFile("/nonexistent/key").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PseudonymTest, KeyFileIsCreatedOnceAndReadBack) {
  const std::string path = testing::TempDir() + "/pseudonym-key-test";
  std::remove(path.c_str());
  ASSERT_TRUE(Pseudonymiser::CreateKeyFileIfMissing(path).ok());
  const std::string first = Pseudonymiser::FromKeyFile(path)->ForBsn("111222333");
  ASSERT_TRUE(Pseudonymiser::CreateKeyFileIfMissing(path).ok());  // kept, not replaced
  EXPECT_EQ(Pseudonymiser::FromKeyFile(path)->ForBsn("111222333"), first);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace schakel::privacy
