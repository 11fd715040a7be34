#include "services/keys/key_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "libs/privacy/sealed.h"

namespace schakel::keys {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::string kMaster(32, 'm');

// What the tests' referrals allow, unless a test says otherwise.
const Sharing kShared = std::vector<std::string>{"ggd", "mjd"};

std::unique_ptr<KeyStore> Memory() { return *KeyStore::Open(":memory:", kMaster); }

TEST(KeyStore, OneKeyPerClientMadeOnFirstUse) {
  auto store = Memory();
  absl::StatusOr<DataKey> first = store->ClientKey("p-anna", "r-1", kShared);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->key.size(), 32u);
  EXPECT_EQ(first->key_id.rfind("k-", 0), 0u);
  absl::StatusOr<DataKey> again = store->ClientKey("p-anna", "r-2", kShared);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->key_id, first->key_id);
  EXPECT_EQ(again->key, first->key);
  absl::StatusOr<DataKey> other = store->ClientKey("p-bram", "r-3", kShared);
  EXPECT_NE(other->key_id, first->key_id);
  EXPECT_NE(other->key, first->key);
  EXPECT_EQ(*store->CountKeys(), 2);
  EXPECT_EQ(*store->ClientOf("r-2"), "p-anna");
  EXPECT_EQ(store->ClientOf("r-9").status().code(), absl::StatusCode::kNotFound);
}

TEST(KeyStore, ManyRequestsInOneTransactionAreEachAnsweredAsAloneWouldBe) {
  auto store = Memory();
  const DataKey anna = *store->ClientKey("p-anna", "r-1", kShared);
  // Anna again, a new client twice in the same group, and one more.
  std::vector<absl::StatusOr<DataKey>> keys = store->ClientKeys({{"p-anna", "r-2", kShared},
                                                                 {"p-bram", "r-3", kShared},
                                                                 {"p-bram", "r-4", kShared},
                                                                 {"p-cas", "r-5", kShared}});
  ASSERT_EQ(keys.size(), 4u);
  for (const auto& k : keys) ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(keys[0]->key_id, anna.key_id);
  EXPECT_EQ(keys[0]->key, anna.key);
  EXPECT_EQ(keys[1]->key_id, keys[2]->key_id) << "one client, one key, also within a group";
  EXPECT_EQ(keys[1]->key, keys[2]->key);
  EXPECT_NE(keys[3]->key_id, keys[1]->key_id);
  EXPECT_EQ(keys[2]->client_pseudonym, "p-bram");
  EXPECT_EQ(keys[2]->referral_id, "r-4");
  EXPECT_EQ(*store->CountKeys(), 3);
  EXPECT_EQ(*store->ClientOf("r-4"), "p-bram");
  EXPECT_EQ(*store->ClientOf("r-5"), "p-cas");
  EXPECT_TRUE(store->ClientKeys({}).empty());
}

TEST(KeyStore, HandsAKeyOnlyToTheOrganisationOfferedTheAssignment) {
  auto store = Memory();
  const DataKey anna = *store->ClientKey("p-anna", "r-1", kShared);
  const DataKey bram = *store->ClientKey("p-bram", "r-2", kShared);
  ASSERT_TRUE(store->AddGrants({{"r-1.0", "r-1", "mjd"}, {"r-2.0", "r-2", "ggd"}}).ok());
  ASSERT_TRUE(store->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());  // seen again: nothing changes

  DataKey got;
  EXPECT_EQ(*store->AssignmentKey("r-1.0", anna.key_id, "mjd", &got), KeyStore::Access::kGranted);
  EXPECT_EQ(got.key, anna.key);
  EXPECT_EQ(*store->AssignmentKey("r-1.0", anna.key_id, "ggd", &got),
            KeyStore::Access::kNotGranted);
  EXPECT_EQ(*store->AssignmentKey("r-1.1", anna.key_id, "mjd", &got),
            KeyStore::Access::kNotGranted);
  // Another client's key through one's own assignment: no.
  EXPECT_EQ(*store->AssignmentKey("r-1.0", bram.key_id, "mjd", &got),
            KeyStore::Access::kNotGranted);
  // A key this store never made (another key service sealed it).
  EXPECT_EQ(*store->AssignmentKey("r-1.0", "k-elsewhere", "mjd", &got),
            KeyStore::Access::kUnknownKey);
}

TEST(KeyStore, ANewReferralComesWithItsSharingPermission) {
  auto store = Memory();
  absl::StatusOr<DataKey> none = store->ClientKey("p-anna", "r-1", std::nullopt);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(none.status().message(),
            "sharing: is required for a referral the key service has not recorded");
  absl::StatusOr<DataKey> nobody = store->ClientKey("p-anna", "r-1", std::vector<std::string>{});
  EXPECT_EQ(nobody.status().message(),
            "sharing.organisations: must name at least one organisation");
  EXPECT_EQ(*store->CountKeys(), 0) << "a refused request makes no key";
  EXPECT_EQ(store->ClientOf("r-1").status().code(), absl::StatusCode::kNotFound);

  const DataKey anna = *store->ClientKey("p-anna", "r-1", std::vector<std::string>{"mjd", "ggd"});
  EXPECT_EQ(*store->SharingOf("r-1"), (std::vector<std::string>{"ggd", "mjd"}));
  // Asked again for a referral it has (intake's cancellation of an old referral): what was
  // recorded stands; given again, it replaces what was recorded.
  EXPECT_EQ(store->ClientKey("p-anna", "r-1", std::nullopt)->key_id, anna.key_id);
  EXPECT_EQ(*store->SharingOf("r-1"), (std::vector<std::string>{"ggd", "mjd"}));
  ASSERT_TRUE(store->ClientKey("p-anna", "r-1", std::vector<std::string>{"mjd"}).ok());
  EXPECT_EQ(*store->SharingOf("r-1"), std::vector<std::string>{"mjd"});
  EXPECT_EQ(*store->SharingOf("r-9"), std::nullopt);

  // In a group, the request without one fails alone.
  std::vector<absl::StatusOr<DataKey>> keys = store->ClientKeys({{"p-bram", "r-2", kShared},
                                                                 {"p-cas", "r-3", std::nullopt},
                                                                 {"p-anna", "r-1", std::nullopt}});
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_TRUE(keys[0].ok()) << keys[0].status();
  EXPECT_EQ(keys[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(keys[2]->key_id, anna.key_id);
  EXPECT_EQ(store->ClientOf("r-3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->CountKeys(), 2);
}

// The second line behind the router: an offer outside the client's sharing permission (a router's
// bug, a forged forward it took) opens nothing.
TEST(KeyStore, AnOfferOutsideTheSharingPermissionOpensNothing) {
  auto store = Memory();
  const DataKey anna = *store->ClientKey("p-anna", "r-1", std::vector<std::string>{"mjd"});
  ASSERT_TRUE(store->AddGrants({{"r-1.0", "r-1", "mjd"}, {"r-1.1", "r-1", "ggd"}}).ok());

  DataKey got;
  EXPECT_EQ(*store->AssignmentKey("r-1.1", anna.key_id, "ggd", &got),
            KeyStore::Access::kOutsideSharing);
  EXPECT_EQ(got.key, "");
  EXPECT_EQ(got.key_id, "");
  EXPECT_EQ(got.client_pseudonym, "");
  EXPECT_EQ(got.referral_id, "r-1") << "for the log line";
  DataKey mjd;
  EXPECT_EQ(*store->AssignmentKey("r-1.0", anna.key_id, "mjd", &mjd), KeyStore::Access::kGranted);
  EXPECT_EQ(mjd.key, anna.key);
  EXPECT_TRUE(mjd.sharing_known);
  // The permission is the referral's: another referral of the same client that names the GGD
  // gives it the client's key for that referral's assignment only.
  ASSERT_TRUE(store->ClientKey("p-anna", "r-2", std::vector<std::string>{"ggd"}).ok());
  ASSERT_TRUE(store->AddGrants({{"r-2.0", "r-2", "ggd"}}).ok());
  EXPECT_EQ(*store->AssignmentKey("r-2.0", anna.key_id, "ggd", &got), KeyStore::Access::kGranted);
  EXPECT_EQ(*store->AssignmentKey("r-1.1", anna.key_id, "ggd", &got),
            KeyStore::Access::kOutsideSharing);
  // Once the client is erased, still nothing about the client for the GGD: not even "erased".
  ASSERT_TRUE(store->EraseClient("p-anna", 1000).ok());
  EXPECT_EQ(*store->AssignmentKey("r-1.1", anna.key_id, "ggd", &got),
            KeyStore::Access::kOutsideSharing);
  EXPECT_EQ(*store->AssignmentKey("r-1.0", anna.key_id, "mjd", &got), KeyStore::Access::kErased);
}

TEST(KeyStore, ErasureDestroysTheKeysAndANewReferralGetsANewOne) {
  auto store = Memory();
  const DataKey anna = *store->ClientKey("p-anna", "r-1", kShared);
  (void)store->ClientKey("p-bram", "r-2", kShared);
  ASSERT_TRUE(store->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
  absl::StatusOr<Erasure> erased = store->EraseClient("p-anna", 1000);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->client_pseudonym, "p-anna");
  EXPECT_THAT(erased->key_ids, ElementsAre(anna.key_id));
  EXPECT_EQ(*store->CountKeys(), 1);
  DataKey got;
  EXPECT_EQ(*store->AssignmentKey("r-1.0", anna.key_id, "mjd", &got), KeyStore::Access::kErased);
  EXPECT_EQ(*store->AssignmentKey("r-1.0", anna.key_id, "ggd", &got),
            KeyStore::Access::kNotGranted);
  EXPECT_THAT(store->EraseClient("p-anna", 1001)->key_ids, IsEmpty());

  const DataKey later = *store->ClientKey("p-anna", "r-5", kShared);
  EXPECT_NE(later.key_id, anna.key_id);
  EXPECT_NE(later.key, anna.key);
}

std::string FileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(KeyStore, KeysAreWrappedOnDiskAndGoneFromTheFileAfterErasure) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("key_store_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "keys.db").string();
  std::string key_id, key;
  {
    auto store = *KeyStore::Open(db, kMaster);
    const DataKey k = *store->ClientKey("p-anna", "r-1", kShared);
    key_id = k.key_id;
    key = k.key;
  }
  std::string bytes = FileBytes(db) + FileBytes(db + "-wal");
  EXPECT_NE(bytes.find(key_id), std::string::npos);
  EXPECT_EQ(bytes.find(key), std::string::npos) << "a data key in clear in the file";

  // Another master key is refused at the start, with what to do.
  {
    absl::StatusOr<std::unique_ptr<KeyStore>> wrong = KeyStore::Open(db, std::string(32, 'x'));
    EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(wrong.status().message()),
                ::testing::HasSubstr("not the one this key store was made with"));
  }
  // A store from before the check (no check row): a wrong key is found out from a key it holds; the
  // right one opens it and records the check.
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "DELETE FROM master_check", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
    EXPECT_EQ(KeyStore::Open(db, std::string(32, 'x')).status().code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(KeyStore::Open(db, kMaster).ok());
    EXPECT_EQ(KeyStore::Open(db, std::string(32, 'x')).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  // The wrapped key as stored, read with SQLite itself.
  std::string wrapped;
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT wrapped FROM keys", -1, &stmt, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    wrapped.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                   static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
  }
  ASSERT_GT(wrapped.size(), 40u);
  {
    auto store = *KeyStore::Open(db, kMaster);
    EXPECT_EQ(store->ClientKey("p-anna", "r-2", kShared)->key, key);
    bytes = FileBytes(db) + FileBytes(db + "-wal");
    EXPECT_NE(bytes.find(wrapped), std::string::npos);
    ASSERT_TRUE(store->EraseClient("p-anna", 1).ok());
    // Overwritten in the file (secure_delete, the WAL checkpointed), not just unlinked.
    bytes = FileBytes(db) + FileBytes(db + "-wal");
    EXPECT_EQ(bytes.find(wrapped), std::string::npos) << "the destroyed key is still in the file";
  }
  auto store = *KeyStore::Open(db, kMaster);
  EXPECT_EQ(*store->CountKeys(), 0);
  std::filesystem::remove_all(dir);
}

// The sharing permissions are on disk: a restart keeps refusing. A store made before they were
// recorded gets their table at its next start; its referrals have none, and for them the offer
// alone decides (as it did), with `sharing_known` false for the key service to warn about.
TEST(KeyStore, SharingPermissionsSurviveARestartAndOldReferralsHaveNone) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("key_store_sharing_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "keys.db").string();
  std::string key_id;
  {
    auto store = *KeyStore::Open(db, kMaster);
    key_id = store->ClientKey("p-anna", "r-1", std::vector<std::string>{"mjd"})->key_id;
    ASSERT_TRUE(store->ClientKey("p-bram", "r-2", kShared).ok());
    ASSERT_TRUE(store->AddGrants({{"r-1.0", "r-1", "mjd"}, {"r-1.1", "r-1", "ggd"}}).ok());
  }
  {
    auto store = *KeyStore::Open(db, kMaster);
    EXPECT_EQ(*store->SharingOf("r-1"), std::vector<std::string>{"mjd"});
    DataKey got;
    EXPECT_EQ(*store->AssignmentKey("r-1.1", key_id, "ggd", &got),
              KeyStore::Access::kOutsideSharing);
    EXPECT_EQ(got.key, "");
    EXPECT_EQ(*store->AssignmentKey("r-1.0", key_id, "mjd", &got), KeyStore::Access::kGranted);
  }
  // The store as an earlier key service left it: no sharing table.
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "DROP TABLE referral_sharing", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  {
    auto store = *KeyStore::Open(db, kMaster);
    EXPECT_EQ(*store->SharingOf("r-1"), std::nullopt);
    DataKey got;
    EXPECT_EQ(*store->AssignmentKey("r-1.1", key_id, "ggd", &got), KeyStore::Access::kGranted);
    EXPECT_FALSE(got.sharing_known);
    EXPECT_EQ(*store->AssignmentKey("r-1.2", key_id, "ggd", &got), KeyStore::Access::kNotGranted)
        << "without an offer, still nothing";
    // Intake asking again for the old referral's key (no permission to send) is answered.
    EXPECT_EQ(store->ClientKey("p-anna", "r-1", std::nullopt)->key_id, key_id);
    // A new referral gets its permission recorded as usual.
    ASSERT_TRUE(store->ClientKey("p-anna", "r-3", std::vector<std::string>{"mjd"}).ok());
    ASSERT_TRUE(store->AddGrants({{"r-3.0", "r-3", "ggd"}}).ok());
    EXPECT_EQ(*store->AssignmentKey("r-3.0", key_id, "ggd", &got),
              KeyStore::Access::kOutsideSharing);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace schakel::keys
