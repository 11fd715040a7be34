// The writers' keys: the files openssl makes are read as the same Ed25519 keys, and the verifier's
// trusted keys give each key to exactly one writer.
#include "libs/audit/signing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "libs/audit/entry.h"
#include "libs/audit/writer.h"

namespace schakel::audit {
namespace {

using ::testing::HasSubstr;

// Made by `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` (OpenSSL 3.0).
constexpr char kOpensslPrivate[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIHrLepZ+dX+oeflKBMOT0WF0XhooYWT6CkDFARLCBSoV\n"
    "-----END PRIVATE KEY-----\n";
constexpr char kOpensslPublic[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAx8InpydUXA+pQf+l7bm6rmEeVobE96IxFqM9AnANuMI=\n"
    "-----END PUBLIC KEY-----\n";
// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`: a TLS-style key, not Ed25519.
constexpr char kP256Private[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgU0NpmEuZrF/OvfC8\n"
    "OQ2hr74PqrofFS31Bfnfa27GKMKhRANCAAST5IQeRhImhuFMXvtf7LcCt33CUsFl\n"
    "rG0FvA/7Rui7Ij/5wjPFV7r+4QUt5Oi3H1KQ3Y7WQC86zo+cG+iYTgoG\n"
    "-----END PRIVATE KEY-----\n";

std::string Unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(AuditSigningTest, Rfc8032TestVectorOne) {
  // RFC 8032 section 7.1, TEST 1: the empty message.
  absl::StatusOr<SigningKey> key = SigningKey::FromSeed(
      Unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(Hex(key->public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  EXPECT_EQ(Hex(key->SignBytes("")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
            "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
}

TEST(AuditSigningTest, ReadsTheKeysOpensslMakes) {
  absl::StatusOr<SigningKey> key = SigningKey::FromPem(kOpensslPrivate);
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<std::vector<std::string>> public_keys = PublicKeysFromPem(kOpensslPublic);
  ASSERT_TRUE(public_keys.ok()) << public_keys.status();
  ASSERT_EQ(public_keys->size(), 1u);
  EXPECT_EQ((*public_keys)[0], key->public_key());
  EXPECT_EQ(PublicKeyPem(key->public_key()), kOpensslPublic);
}

TEST(AuditSigningTest, RefusesWhatIsNoEd25519Key) {
  absl::StatusOr<SigningKey> p256 = SigningKey::FromPem(kP256Private);
  EXPECT_EQ(p256.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p256.status().message(), HasSubstr("not an Ed25519 key"));
  EXPECT_THAT(SigningKey::FromPem(kOpensslPublic).status().message(),
              HasSubstr("expected one PRIVATE KEY block"));
  EXPECT_EQ(SigningKey::ReadFile("/nonexistent/inbox-mjd.key").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(AuditSigningTest, ASignatureCoversTheHashUnderTheKeyItNames) {
  const SigningKey key = SigningKey::Generate();
  v1::AuditEntry entry;
  entry.set_hash(std::string(kHashSize, '\7'));
  Sign(entry, key);
  EXPECT_EQ(entry.signature().size(), kSignatureSize);
  EXPECT_EQ(entry.signing_key(), key.public_key());
  EXPECT_TRUE(SignatureVerifies(entry));
  v1::AuditEntry other_hash = entry;
  other_hash.set_hash(std::string(kHashSize, '\6'));
  EXPECT_FALSE(SignatureVerifies(other_hash));
  v1::AuditEntry other_key = entry;
  other_key.set_signing_key(SigningKey::Generate().public_key());
  EXPECT_FALSE(SignatureVerifies(other_key));
  v1::AuditEntry unsigned_entry = entry;
  unsigned_entry.clear_signature();
  EXPECT_FALSE(SignatureVerifies(unsigned_entry));
}

TEST(AuditSigningTest, EachTrustedKeyIsOneWritersOnly) {
  const SigningKey mjd = SigningKey::Generate();
  TrustedKeys trusted;
  ASSERT_TRUE(trusted.Add("inbox-mjd", mjd.public_key()).ok());
  const absl::Status twice = trusted.Add("inbox-gemeente", mjd.public_key());
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.message(), HasSubstr("is trusted for inbox-mjd already"));
  ASSERT_NE(trusted.WriterOf(mjd.public_key()), nullptr);
  EXPECT_EQ(*trusted.WriterOf(mjd.public_key()), "inbox-mjd");
  EXPECT_EQ(trusted.WriterOf(SigningKey::Generate().public_key()), nullptr);
  EXPECT_FALSE(trusted.Add("intake", "short").ok());
}

TEST(AuditSigningTest, AFolderOfPublicKeysNamesTheirWriters) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("schakel-audit-keys-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const SigningKey old_key = SigningKey::Generate();
  const SigningKey new_key = SigningKey::Generate();
  const SigningKey intake = SigningKey::Generate();
  // A renewed key: the old one stays, after it the new one.
  std::ofstream(dir / "inbox-mjd.pub")
      << PublicKeyPem(old_key.public_key()) << PublicKeyPem(new_key.public_key());
  std::ofstream(dir / "intake.pub") << PublicKeyPem(intake.public_key());
  std::ofstream(dir / "intake.key") << "not read: the verifier needs no private key";
  TrustedKeys trusted;
  const absl::Status added = trusted.AddFolder(dir.string());
  ASSERT_TRUE(added.ok()) << added;
  EXPECT_EQ(trusted.size(), 3u);
  EXPECT_EQ(*trusted.WriterOf(old_key.public_key()), "inbox-mjd");
  EXPECT_EQ(*trusted.WriterOf(new_key.public_key()), "inbox-mjd");
  EXPECT_EQ(*trusted.WriterOf(intake.public_key()), "intake");

  std::ofstream(dir / "ops.pub") << "garbage";
  const absl::Status bad = trusted.AddFolder(dir.string());
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("ops.pub: no PUBLIC KEY block"));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(TrustedKeys().AddFolder(dir.string()).code(), absl::StatusCode::kNotFound);
}

TEST(AuditSigningTest, AServiceLoadsItsKeyOrRefusesABadOne) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("schakel-audit-key-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ops.key") << kOpensslPrivate;
  std::ofstream(dir / "tls.key") << kP256Private;
  absl::StatusOr<std::shared_ptr<const SigningKey>> loaded =
      LoadSigningKey((dir / "ops.key").string(), "ops");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_NE(*loaded, nullptr);
  EXPECT_EQ((*loaded)->public_key(), (*PublicKeysFromPem(kOpensslPublic))[0]);
  // No flag: unsigned (the service warns), not a failure.
  absl::StatusOr<std::shared_ptr<const SigningKey>> none = LoadSigningKey("", "ops");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  // A TLS key by mistake: the service does not start.
  absl::StatusOr<std::shared_ptr<const SigningKey>> tls =
      LoadSigningKey((dir / "tls.key").string(), "ops");
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tls.status().message(), HasSubstr("tls.key: not an Ed25519 key"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace schakel::audit
