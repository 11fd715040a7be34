#include "libs/privacy/sealed.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace schakel::privacy {
namespace {

TEST(Sealed, OpensWithTheKeyInItsPlace) {
  const std::string key = NewDataKey();
  ASSERT_EQ(key.size(), kDataKeyBytes);
  absl::StatusOr<v1::Sealed> sealed = Seal("k-1", key, NeedContext("r-1", 0), "schuld bij de DUO");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->key_id(), "k-1");
  EXPECT_EQ(sealed->nonce().size(), 24u);
  EXPECT_EQ(sealed->ciphertext().find("DUO"), std::string::npos);
  absl::StatusOr<std::string> opened = Open(*sealed, key, NeedContext("r-1", 0));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "schuld bij de DUO");
}

TEST(Sealed, TwoSealingsOfTheSameTextDiffer) {
  const std::string key = NewDataKey();
  EXPECT_NE(Seal("k", key, ClientContext("r"), "Anna")->ciphertext(),
            Seal("k", key, ClientContext("r"), "Anna")->ciphertext());
}

TEST(Sealed, RefusesAnotherKeyAnotherPlaceOrAChangedByte) {
  const std::string key = NewDataKey();
  const v1::Sealed sealed = *Seal("k-1", key, NeedContext("r-1", 0), "details");
  EXPECT_EQ(Open(sealed, NewDataKey(), NeedContext("r-1", 0)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, key, NeedContext("r-1", 1)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, key, NeedContext("r-2", 0)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, key, ClientContext("r-1")).status().code(), absl::StatusCode::kDataLoss);
  v1::Sealed changed = sealed;
  changed.mutable_ciphertext()->front() ^= 1;
  EXPECT_EQ(Open(changed, key, NeedContext("r-1", 0)).status().code(), absl::StatusCode::kDataLoss);
  v1::Sealed truncated = sealed;
  truncated.mutable_ciphertext()->resize(3);
  EXPECT_EQ(Open(truncated, key, NeedContext("r-1", 0)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, "short", NeedContext("r-1", 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Seal("k", "short", ClientContext("r"), "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Sealed, AStatusReasonOpensOnlyAtItsOwnChange) {
  const std::string key = NewDataKey();
  const v1::Sealed sealed = *Seal("k-1", key, StatusReasonContext("r-1", "r-1/0/0", 3), "ziek");
  EXPECT_EQ(*Open(sealed, key, StatusReasonContext("r-1", "r-1/0/0", 3)), "ziek");
  EXPECT_EQ(Open(sealed, key, StatusReasonContext("r-1", "r-1/0/0", 4)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, key, StatusOutcomeContext("r-1", "r-1/0/0", 3)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, key, StatusReasonContext("r-1", "r-1/1/0", 3)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(sealed, key, CancelReasonContext("r-1", "r-1/0/0")).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Sealed, KeyFileIsMadeOnceAndReadBack) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("sealed_test_key_" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  absl::StatusOr<std::string> made = ReadKeyFile(path.string(), /*create=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->size(), kDataKeyBytes);
  EXPECT_EQ(*ReadKeyFile(path.string(), /*create=*/false), *made);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::ofstream(path) << "not hex\n";
  EXPECT_EQ(ReadKeyFile(path.string(), false).status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove(path);
  EXPECT_EQ(ReadKeyFile(path.string(), false).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace schakel::privacy
