#include "tools/schakelctl/access_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace schakel::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

kafka::AclBinding Acl(std::string principal, std::string resource, std::string name, bool prefixed,
                      std::string operation) {
  return {std::move(principal), std::move(resource), std::move(name), prefixed,
          std::move(operation)};
}

TEST(AccessCommands, AnAclLineIsPrincipalOperationResourceAndNameWithAStarWhenPrefixed) {
  EXPECT_EQ(AclLine(Acl("User:router", "topic", "schakel.referrals.submitted", false, "Read")),
            "User:router\tRead\ttopic\tschakel.referrals.submitted");
  EXPECT_EQ(AclLine(Acl("User:router", "transactional-id", "schakel.router", true, "Write")),
            "User:router\tWrite\ttransactional-id\tschakel.router*");
}

TEST(AccessCommands, TheExampleNetworksAclsAreTheTablesWithUserPrincipals) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(net.ok()) << net.status();
  const std::vector<kafka::AclBinding> acls = AclsOf(*net);
  ASSERT_FALSE(acls.empty());
  for (const kafka::AclBinding& acl : acls) {
    EXPECT_EQ(acl.principal.rfind("User:", 0), 0u) << AclLine(acl);
  }
  // The router's transactional id is in the table: AclCommand makes it.
  EXPECT_TRUE(std::any_of(acls.begin(), acls.end(), [](const kafka::AclBinding& acl) {
    return acl.resource == "transactional-id";
  }));
}

TEST(AccessCommands, OnlyWhatTheTableDoesNotHaveIsUnwanted) {
  const kafka::AclBinding read = Acl("User:inbox-a", "topic", "schakel.inbox.a", false, "Read");
  const kafka::AclBinding write = Acl("User:inbox-a", "topic", "schakel.status", false, "Write");
  const kafka::AclBinding read_prefixed =
      Acl("User:inbox-a", "topic", "schakel.inbox.a", true, "Read");
  const std::vector<kafka::AclBinding> unwanted = Unwanted({read, write, read_prefixed}, {read});
  ASSERT_EQ(unwanted.size(), 2u);
  EXPECT_EQ(AclLine(unwanted[0]), AclLine(write));
  EXPECT_EQ(AclLine(unwanted[1]), AclLine(read_prefixed));
  EXPECT_THAT(Unwanted({read}, {read}), IsEmpty());
}

TEST(AccessCommands, OneAclCommandPerTransactionalIdWithAllItsOperations) {
  const std::vector<AclCommand> commands =
      AclCommands({Acl("User:router", "transactional-id", "schakel.router", true, "Write"),
                   Acl("User:router", "transactional-id", "schakel.router", true, "Describe"),
                   Acl("User:keys", "transactional-id", "schakel.keys", false, "Write")},
                  "127.0.0.1:9092", "/opt/kafka/libs", "/pki/admin.java.properties");
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0].principal, "User:keys");
  EXPECT_THAT(commands[0].argv,
              ElementsAre("java", "-cp", "/opt/kafka/libs/*", "org.apache.kafka.tools.AclCommand",
                          "--bootstrap-server", "127.0.0.1:9092", "--command-config",
                          "/pki/admin.java.properties", "--add", "--allow-principal", "User:keys",
                          "--transactional-id", "schakel.keys", "--resource-pattern-type",
                          "literal", "--operation", "Write"));
  EXPECT_EQ(commands[1].principal, "User:router");
  const std::vector<std::string> tail(commands[1].argv.end() - 6, commands[1].argv.end());
  EXPECT_THAT(tail, ElementsAre("--resource-pattern-type", "prefixed", "--operation", "Write",
                                "--operation", "Describe"));
}

}  // namespace
}  // namespace schakel::ctl
