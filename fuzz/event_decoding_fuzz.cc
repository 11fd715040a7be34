// Fuzzes every consumer's path from a Kafka record's bytes to what it does with them, fed a stream
// of records (format in fuzz_support.h); byte 0 picks the consumer:
//   0  the router: Escalation::Handle for each record of an input topic (submitted, an
//      organisation's own schakel.from.<org>, cancellations, reassignments), Restore for the state
//      topic, Tick as the clock moves
//   1  an inbox (the organisation picked by byte 0 >> 2): AssignmentIngest::Ingest on an in-memory
//      SQLite store, with the network's automatic rules; byte 0 bit 1 set: rebuilding (replay)
//   2  intake's referral view: ReferralView::ApplyRecord on an in-memory SQLite file
// Never a crash, and: the router refuses a record only with INVALID_ARGUMENT, PERMISSION_DENIED (a
// change of an assignment that is not the sender's) or FAILED_PRECONDITION (a step the lifecycle
// does not allow); everything it
// writes parses again as what its topic carries, and its state restores; an inbox never fails on a
// record (an error would make it retry the record for ever: one bad record would block the inbox).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "services/inbox/ingest.h"
#include "services/inbox/store/inbox_store.h"
#include "services/intake/referral_view.h"
#include "services/router/escalation.h"

namespace schakel::fuzz {
namespace {

constexpr std::int64_t kStart = 1'760'000'000;  // October 2025, a Thursday

const routing::Policy& ThePolicy() {
  static const routing::Policy* policy = new routing::Policy(ExampleNetwork());
  return *policy;
}

kafka::Record ToRecord(const StreamRecord& r, std::int64_t offset) {
  return kafka::Record{TopicOf(r.topic_byte), 0, offset, r.key, r.value};
}

// What the router writes must parse again as what its topic carries.
void CheckOutput(const router::Output& out) {
  if (!out.value) return;  // a tombstone
  const std::string& topic = out.topic;
  bool parses = false;
  if (topic == topology::kStatusTopic) {
    parses = v1::AssignmentStatusChanged().ParseFromString(*out.value);
  } else if (topic == topology::kUnroutableTopic) {
    parses = v1::ReferralUnroutable().ParseFromString(*out.value);
  } else if (topic == topology::kRouterStateTopic) {
    parses = v1::RouterReferralState().ParseFromString(*out.value);
  } else if (topic.rfind("schakel.inbox.", 0) == 0) {
    parses = v1::InboxEvent().ParseFromString(*out.value);
  } else {
    Fail("the router wrote to an unexpected topic: " + topic);
  }
  if (!parses) Fail("the router wrote a record its readers cannot parse, on " + topic);
}

void FuzzRouter(const std::vector<StreamRecord>& records) {
  std::int64_t now = kStart;
  router::Escalation escalation([&now] { return std::chrono::system_clock::from_time_t(now); });
  std::int64_t offset = 0;
  for (const StreamRecord& r : records) {
    now += 3600 * (r.topic_byte >> 4);
    const kafka::Record record = ToRecord(r, offset++);
    if (record.topic == topology::kRouterStateTopic) {
      // Restoring: an empty value stands for a tombstone here.
      std::optional<std::string> value;
      if (!record.value.empty()) value = record.value;
      (void)escalation.Restore(record.partition, record.key, value);
    } else {
      absl::StatusOr<std::vector<router::Output>> out = escalation.Handle(ThePolicy(), record);
      // Bad input, a change of an assignment that is not the sender's, or a step the lifecycle
      // does not allow: refused, each with its code.
      const absl::StatusCode code = out.status().code();
      if (!out.ok() && code != absl::StatusCode::kInvalidArgument &&
          code != absl::StatusCode::kPermissionDenied &&
          code != absl::StatusCode::kFailedPrecondition) {
        Fail("the router refused a record with " + out.status().ToString());
      }
      if (out.ok()) {
        for (const router::Output& o : *out) CheckOutput(o);
      }
    }
    for (const router::Output& o : escalation.Tick(ThePolicy())) CheckOutput(o);
    // The state it writes, another router restores.
    router::Escalation successor([&now] { return std::chrono::system_clock::from_time_t(now); });
    for (const router::Output& o : escalation.TakeStateChanges()) {
      CheckOutput(o);
      if (absl::Status restored = successor.Restore(0, o.key, o.value); !restored.ok()) {
        Fail("router state that does not restore: " + restored.ToString());
      }
    }
  }
}

void FuzzInbox(std::uint8_t consumer, const std::vector<StreamRecord>& records) {
  const routing::Network& network = ExampleNetwork();
  const std::string& org = network.organisations[(consumer >> 2) % network.organisations.size()].id;
  absl::StatusOr<std::unique_ptr<inbox::store::InboxStore>> store =
      inbox::store::InboxStore::Open(":memory:");
  if (!store.ok()) Fail("in-memory store: " + store.status().ToString());
  std::int64_t now = kStart;
  inbox::AssignmentIngest ingest(
      org, **store,
      [&now] {
        google::protobuf::Timestamp t;
        t.set_seconds(now);
        return t;
      },
      &network);
  if ((consumer & 2) != 0) {
    if (absl::Status replay = ingest.ReplayUntil({{0, static_cast<std::int64_t>(records.size())}});
        !replay.ok()) {
      Fail("replay: " + replay.ToString());
    }
  }
  std::int64_t offset = 0;
  for (const StreamRecord& r : records) {
    now += 3600 * (r.topic_byte >> 4);
    kafka::Record record = ToRecord(r, offset++);
    record.topic = topology::InboxTopic(org);  // an inbox reads its own topic only
    absl::StatusOr<inbox::IngestOutcome> outcome = ingest.Ingest(record);
    if (!outcome.ok())
      Fail("an inbox failed on a record (it would retry it for ever): " +
           outcome.status().ToString());
  }
}

void FuzzView(const std::vector<StreamRecord>& records) {
  absl::StatusOr<std::unique_ptr<intake::ReferralView>> view =
      intake::ReferralView::Open(":memory:");
  if (!view.ok()) Fail("in-memory view: " + view.status().ToString());
  for (const StreamRecord& r : records) {
    const std::string& topic = TopicOf(r.topic_byte);
    absl::Status applied = (*view)->ApplyRecord(topic, r.value);
    if (!applied.ok() && applied.code() != absl::StatusCode::kInvalidArgument) {
      Fail("the view failed on a record with " + applied.ToString());
    }
  }
}

}  // namespace
}  // namespace schakel::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  schakel::fuzz::SilenceLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace schakel::fuzz;
  std::uint8_t consumer = 0;
  const std::vector<StreamRecord> records = DecodeStream(data, size, &consumer);
  if (records.size() > 64) return -1;  // long streams add time, not paths
  switch (consumer & 0x3) {
    case 0:
      FuzzRouter(records);
      break;
    case 1:
    case 3:
      FuzzInbox(consumer, records);
      break;
    case 2:
      FuzzView(records);
      break;
  }
  return 0;
}
