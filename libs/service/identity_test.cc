#include "libs/service/identity.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace schakel::service {
namespace {

TEST(IdentityTest, CertificateNamesSayWhoHoldsThem) {
  const Caller mjd = CallerFromCommonName("mjd.organisation.schakel");
  EXPECT_EQ(mjd.kind, Caller::Kind::kOrganisation);
  EXPECT_EQ(mjd.id, "mjd");
  EXPECT_EQ(CallerFromCommonName("leger-des-heils.organisation.schakel").id, "leger-des-heils");
  EXPECT_EQ(CallerFromCommonName("anna.operator.schakel").kind, Caller::Kind::kOperator);
  EXPECT_EQ(CallerFromCommonName("router.service.schakel").kind, Caller::Kind::kService);
  EXPECT_EQ(CommonNameOf({Caller::Kind::kOrganisation, "ggd"}), "ggd.organisation.schakel");
  // Anything else is nobody: another suffix, an unknown kind, no id, odd characters.
  for (const char* name :
       {"mjd.organisation.example", "mjd.partner.schakel", ".organisation.schakel", "mjd",
        "MJD.organisation.schakel", "m jd.organisation.schakel", "a.b.organisation.schakel", ""}) {
    EXPECT_EQ(CallerFromCommonName(name).kind, Caller::Kind::kNobody) << name;
  }
}

TEST(IdentityTest, TokensAreKnownOnlyByTheirHash) {
  // SHA-256 of "abc" (FIPS 180-2's example).
  EXPECT_EQ(TlsAuthenticator::TokenHash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

class TokensFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    std::ofstream(path_) << text;
    return path_.string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::filesystem::path path_ =
      std::filesystem::temp_directory_path() / ("schakel-tokens-" + std::to_string(::getpid()));
};

TEST_F(TokensFileTest, ReadsOrganisationsAndHashes) {
  const std::string file =
      Write("# a comment\n\nmjd " + TlsAuthenticator::TokenHash("t-mjd") +
            "  # MJD's portal\nggd " + TlsAuthenticator::TokenHash("t-ggd") + "\n");
  EXPECT_TRUE(TlsAuthenticator::Create(file).ok());
  EXPECT_TRUE(TlsAuthenticator::Create("").ok());  // no tokens at all
}

TEST_F(TokensFileTest, ABadLineIsRefusedWithItsNumberButNotItsContent) {
  // A token pasted where its hash belongs must not end up in a log.
  absl::StatusOr<std::shared_ptr<TlsAuthenticator>> bad = TlsAuthenticator::Create(
      Write("mjd " + TlsAuthenticator::TokenHash("x") + "\nggd secret-token\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            path_.string() + ":2: expected \"<organisation id> <sha-256 of the token, 64 hex>\"");
  EXPECT_EQ(std::string(bad.status().message()).find("secret-token"), std::string::npos);
  EXPECT_EQ(TlsAuthenticator::Create(Write("MJD " + TlsAuthenticator::TokenHash("x") + "\n"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsAuthenticator::Create("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace schakel::service
