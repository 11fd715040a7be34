#include "services/ops/redrive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace schakel::ops {
namespace {

using ::testing::HasSubstr;

routing::Network TwoOrganisations() {
  routing::Network network;
  for (const char* id : {"terwille", "mjd"}) {
    network.organisations.push_back(routing::Organisation{});
    network.organisations.back().id = id;
  }
  return network;
}

// Kafka and the audit chain as maps: what is at each place, what was published, what recorded.
struct FakeKafka {
  std::map<std::string, kafka::Record> at;  // place name -> record
  std::vector<kafka::Record> published;
  std::map<std::string, PastRedrive> chain;  // dead letter -> its recorded redrive
  std::vector<std::string> recorded_by;

  void Put(const std::string& topic, std::int32_t partition, std::int64_t offset,
           const std::string& key, const std::string& value) {
    at[deadletter::Name({topic, partition, offset})] = {topic, partition, offset, key, value};
  }
  void PutLetter(const std::string& dl_topic, std::int64_t dl_offset, const std::string& topic,
                 std::int64_t offset, const std::string& key, const std::string& value) {
    v1::DeadLetter letter;
    letter.set_topic(topic);
    letter.set_partition(0);
    letter.set_offset(offset);
    letter.set_key(key);
    letter.set_value(value);
    letter.set_consumer("whoever it says");
    letter.set_reason("undecodable");
    Put(dl_topic, 0, dl_offset, topic + "/0/" + std::to_string(offset), letter.SerializeAsString());
  }

  Redriver::Io Io() {
    return {.read = [this](const deadletter::Place& p) -> absl::StatusOr<kafka::Record> {
              auto it = at.find(deadletter::Name(p));
              if (it == at.end()) return absl::NotFoundError("no record at " + deadletter::Name(p));
              return it->second;
            },
            .publish =
                [this](const std::string& topic, const std::string& key, const std::string& value) {
                  published.push_back({topic, 0, -1, key, value});
                  return absl::OkStatus();
                },
            .find = [this](const std::string& dl) -> absl::StatusOr<std::optional<PastRedrive>> {
              auto it = chain.find(dl);
              if (it == chain.end()) return std::optional<PastRedrive>();
              return std::optional<PastRedrive>(it->second);
            },
            .record =
                [this](const std::string& dl, const v1::DeadLetter&, const std::string& by) {
                  chain[dl] = {"2026-12-07T03:00:00Z", by};
                  recorded_by.push_back(by);
                  return absl::OkStatus();
                },
            .now = [] { return std::string("2026-12-07T03:00:00Z"); }};
  }
};

RedriveRequest Request(const std::string& topic, std::int64_t offset) {
  return {.dead_letter_topic = topic, .partition = 0, .offset = offset, .by = "console:anna"};
}

TEST(RedriverTest, AGenuineDeadLetterIsRedrivenOnceWithTheOriginalBytes) {
  FakeKafka kafka;
  kafka.Put("schakel.inbox.terwille", 0, 3, "a-1-0", "poison");
  kafka.PutLetter("schakel.deadletters.inbox-terwille", 0, "schakel.inbox.terwille", 3, "a-1-0",
                  "poison");
  Redriver redriver(TwoOrganisations(), kafka.Io());
  absl::StatusOr<nlohmann::json> done =
      redriver.Redrive(Request("schakel.deadletters.inbox-terwille", 0));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ((*done)["original"], "schakel.inbox.terwille/0/3");
  EXPECT_EQ((*done)["consumer"], "inbox-terwille");
  ASSERT_EQ(kafka.published.size(), 1u);
  EXPECT_EQ(kafka.published[0].topic, "schakel.inbox.terwille");
  EXPECT_EQ(kafka.published[0].key, "a-1-0");
  EXPECT_EQ(kafka.published[0].value, "poison");
  EXPECT_EQ(kafka.recorded_by, std::vector<std::string>{"console:anna"});

  // Again, by someone else: refused, naming the first.
  RedriveRequest again = Request("schakel.deadletters.inbox-terwille", 0);
  again.by = "console:bob";
  const absl::StatusOr<nlohmann::json> second = redriver.Redrive(again);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            "refused: schakel.deadletters.inbox-terwille/0/0 was re-driven at "
            "2026-12-07T03:00:00Z by console:anna; a dead letter is re-driven once");
  EXPECT_EQ(kafka.published.size(), 1u);
}

TEST(RedriverTest, ARedriveRecordedBeforeARestartIsFoundInTheChain) {
  FakeKafka kafka;
  kafka.Put("schakel.inbox.terwille", 0, 3, "a-1-0", "poison");
  kafka.PutLetter("schakel.deadletters.inbox-terwille", 0, "schakel.inbox.terwille", 3, "a-1-0",
                  "poison");
  kafka.chain["schakel.deadletters.inbox-terwille/0/0"] = {"2026-12-06T10:00:00Z", "console:anna"};
  Redriver restarted(TwoOrganisations(), kafka.Io());
  const absl::StatusOr<nlohmann::json> done =
      restarted.Redrive(Request("schakel.deadletters.inbox-terwille", 0));
  EXPECT_EQ(done.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(done.status().message(),
              HasSubstr("re-driven at 2026-12-06T10:00:00Z by console:anna"));
  EXPECT_TRUE(kafka.published.empty());
}

TEST(RedriverTest, APlantedLetterNamingAnotherOrganisationsTopicPublishesNothing) {
  FakeKafka kafka;
  kafka.Put("schakel.inbox.mjd", 0, 5, "a-9-0", "mjd's offer");
  kafka.PutLetter("schakel.deadletters.inbox-terwille", 0, "schakel.inbox.mjd", 5, "a-9-0",
                  "mjd's offer");
  Redriver redriver(TwoOrganisations(), kafka.Io());
  const absl::StatusOr<nlohmann::json> done =
      redriver.Redrive(Request("schakel.deadletters.inbox-terwille", 0));
  EXPECT_EQ(done.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(done.status().message(),
              HasSubstr("schakel.inbox.mjd is not an input of inbox-terwille"));
  EXPECT_TRUE(kafka.published.empty());
  EXPECT_TRUE(kafka.recorded_by.empty());
}

TEST(RedriverTest, AForgedCopyIsRefusedAndTheOriginalIsNotPublished) {
  FakeKafka kafka;
  kafka.Put("schakel.inbox.terwille", 0, 3, "a-1-0", "what the router wrote");
  kafka.PutLetter("schakel.deadletters.inbox-terwille", 0, "schakel.inbox.terwille", 3, "a-1-0",
                  "a forged offer");
  Redriver redriver(TwoOrganisations(), kafka.Io());
  const absl::StatusOr<nlohmann::json> done =
      redriver.Redrive(Request("schakel.deadletters.inbox-terwille", 0));
  EXPECT_EQ(done.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(done.status().message(),
              HasSubstr("value differs from the record's at schakel.inbox.terwille/0/3"));
  EXPECT_TRUE(kafka.published.empty());
}

TEST(RedriverTest, WhatIsNotThereIsNotFound) {
  FakeKafka kafka;
  kafka.PutLetter("schakel.deadletters.inbox-terwille", 0, "schakel.inbox.terwille", 99, "k", "v");
  Redriver redriver(TwoOrganisations(), kafka.Io());
  EXPECT_EQ(redriver.Redrive(Request("schakel.deadletters.inbox-terwille", 1)).status().message(),
            "no dead letter at schakel.deadletters.inbox-terwille/0/1");
  const absl::Status gone =
      redriver.Redrive(Request("schakel.deadletters.inbox-terwille", 0)).status();
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gone.message(), HasSubstr("schakel.inbox.terwille/0/99"));
  EXPECT_EQ(redriver.Redrive(Request("schakel.inbox.terwille", 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(kafka.published.empty());
}

TEST(RedriverTest, ParsesTheRequest) {
  absl::StatusOr<RedriveRequest> r = ParseRedriveRequest(
      R"({"dead_letter_topic": "schakel.deadletters.router", "partition": 2, "offset": 40})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dead_letter_topic, "schakel.deadletters.router");
  EXPECT_EQ(r->partition, 2);
  EXPECT_EQ(r->offset, 40);
  EXPECT_EQ(ParseRedriveRequest(R"({"partition": 2, "offset": 40})").status().message(),
            "dead_letter_topic: required");
  EXPECT_EQ(ParseRedriveRequest(R"({"dead_letter_topic": "x", "partition": -1, "offset": 4})")
                .status()
                .message(),
            "partition: must be a whole number from 0");
  EXPECT_EQ(ParseRedriveRequest(R"({"dead_letter_topic": "x", "partition": 1})").status().message(),
            "offset: required");
}

}  // namespace
}  // namespace schakel::ops
