// Writes the fuzzers' seed inputs: a few small valid inputs each, made from the contract so that
// they stay valid when it changes. Usage: fuzz_seeds <dir>; writes <dir>/<target>/<name>.
//
// referral_validation_fuzz: serialized SubmitReferralRequests (the seed story and variants).
// event_decoding_fuzz: record streams (format in fuzz_support.h) for each consumer, made of the
// events the router really writes for the seed story, then what inboxes and intake answer.
#include <google/protobuf/util/time_util.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/intake.pb.h"
#include "services/router/events.h"

namespace schakel::fuzz {
namespace {

namespace fs = std::filesystem;
constexpr char kReferralId[] = "r-0123456789abcdef01234567";

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) Fail("cannot write " + (dir / name).string());
}

// The seed story: debt help, an income benefit and cheaper housing.
v1::SubmitReferralRequest SeedRequest() {
  v1::SubmitReferralRequest request;
  v1::Referral* r = request.mutable_referral();
  r->mutable_client()->set_client_code("TW-2020-0413");
  r->add_needs()->set_code("debt");
  r->add_needs()->set_code("income");
  v1::NeedRequest* housing = r->add_needs();
  housing->set_code("housing");
  housing->set_details("Zoekt goedkopere woonruimte");
  r->set_urgency(v1::URGENCY_NORMAL);
  r->set_region("groningen-stad");
  r->add_languages("nl");
  r->mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"gemeente", "leger-des-heils", "mjd"}) {
    r->mutable_sharing()->add_organisations(org);
  }
  return request;
}

void ReferralSeeds(const fs::path& dir) {
  v1::SubmitReferralRequest seed = SeedRequest();
  Write(dir, "seed-story", seed.SerializeAsString());

  v1::SubmitReferralRequest urgent = seed;
  v1::Referral* r = urgent.mutable_referral();
  r->set_urgency(v1::URGENCY_URGENT);
  r->mutable_client()->set_bsn("111222333");
  r->set_region("groningen-ommeland");
  r->add_languages("ro");
  r->add_languages("en");
  r->mutable_needs(0)->set_details(
      "Spreekt Roemeens; schulden bij \xc3\xa9\xc3\xa9n schuldeiser \xe2\x82\xac 4.000");
  r->mutable_sharing()->set_basis(v1::SHARING_BASIS_VITAL_INTEREST);
  urgent.set_idempotency_key("terwille:2025-10-09:0001");
  Write(dir, "urgent-bsn-key", urgent.SerializeAsString());

  // Every need of the network, every organisation.
  v1::SubmitReferralRequest all = seed;
  r = all.mutable_referral();
  r->clear_needs();
  r->mutable_sharing()->clear_organisations();
  const routing::Network& network = ExampleNetwork();
  for (const routing::NeedKind& need : network.needs) r->add_needs()->set_code(need.id);
  for (const routing::Organisation& org : network.organisations) {
    r->mutable_sharing()->add_organisations(org.id);
  }
  r->mutable_sharing()->set_basis(v1::SHARING_BASIS_LEGAL_OBLIGATION);
  Write(dir, "every-need", all.SerializeAsString());
}

v1::EventMeta Meta(const std::string& assignment_id, std::int64_t at) {
  v1::EventMeta meta;
  meta.set_schema_version(1);
  meta.set_event_id("e-" + assignment_id + "-" + std::to_string(at));
  *meta.mutable_occurred_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(at);
  meta.set_referral_id(kReferralId);
  meta.set_assignment_id(assignment_id);
  return meta;
}

StreamRecord Rec(std::string_view topic, std::uint8_t hours_later, std::string key,
                 std::string value) {
  return StreamRecord{static_cast<std::uint8_t>(TopicIndex(topic) | (hours_later << 4)),
                      std::move(key), std::move(value)};
}

void EventSeeds(const fs::path& dir) {
  const routing::Policy policy(ExampleNetwork());
  constexpr std::int64_t kAt = 1'760'000'000;

  v1::ReferralSubmitted submitted;
  const v1::SubmitReferralRequest request = SeedRequest();
  const v1::Referral& referral = request.referral();
  *submitted.mutable_meta() = Meta("", kAt);
  submitted.set_referring_organisation("terwille");
  submitted.set_client_pseudonym("p-9f86d081884c7d659a2feaa0");
  *submitted.mutable_needs() = referral.needs();
  submitted.set_urgency(referral.urgency());
  submitted.set_region(referral.region());
  *submitted.mutable_languages() = referral.languages();
  *submitted.mutable_sharing() = referral.sharing();
  submitted.set_request_digest("d-0011223344556677");

  std::vector<v1::AssignmentRequested> offers;
  absl::StatusOr<std::vector<router::Output>> routed =
      router::RouteReferral(policy, submitted, &offers);
  if (!routed.ok() || offers.empty()) Fail("the seed referral does not route");
  const v1::AssignmentRequested& first = offers.front();
  const std::string& id = first.meta().assignment_id();
  const std::string inbox_topic = topology::InboxTopic(first.organisation());
  if (first.organisation() != kSeedOwner)
    Fail("the seed referral's first need is not kSeedOwner's");
  const std::string from_topic = topology::FromTopic(first.organisation());
  // What the owner's inbox sends the router, on its own topic.
  auto sent = [](const google::protobuf::Message& event) {
    v1::OrganisationEvent wrapped;
    if (const auto* s = dynamic_cast<const v1::AssignmentStatusChanged*>(&event)) {
      *wrapped.mutable_status_changed() = *s;
    } else {
      *wrapped.mutable_forward_requested() = dynamic_cast<const v1::ForwardRequested&>(event);
    }
    return wrapped.SerializeAsString();
  };

  auto status = [&](v1::AssignmentStatus from, v1::AssignmentStatus to, std::uint64_t version,
                    std::int64_t at) {
    v1::AssignmentStatusChanged s;
    *s.mutable_meta() = Meta(id, at);
    s.set_organisation(first.organisation());
    s.set_from_status(from);
    s.set_to_status(to);
    s.set_version(version);
    s.set_by(first.organisation());
    s.set_need_code(first.need_code());
    s.set_referring_organisation("terwille");
    return s;
  };
  const v1::AssignmentStatusChanged received =
      status(v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED, 2, kAt + 60);
  v1::AssignmentStatusChanged declined =
      status(v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_REJECTED, 3, kAt + 120);
  declined.set_reason("no capacity");
  const v1::AssignmentStatusChanged accepted =
      status(v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_ACCEPTED, 3, kAt + 120);

  v1::ForwardRequested forward;
  *forward.mutable_meta() = Meta(id, kAt + 200);
  forward.set_from_organisation(first.organisation());
  forward.set_to_organisation("leger-des-heils");
  forward.set_reason("better placed");
  *forward.mutable_proposed() = first;
  forward.mutable_proposed()->set_organisation("leger-des-heils");

  v1::CancelRequested cancel;
  *cancel.mutable_meta() = Meta(id, kAt + 300);
  cancel.set_organisation(first.organisation());
  cancel.set_referring_organisation("terwille");
  cancel.set_reason("client moved away");

  v1::ReassignRequested reassign;
  *reassign.mutable_meta() = Meta(id, kAt + 400);
  reassign.set_need_index(first.need_index());
  reassign.set_to_organisation("gemeente");
  reassign.set_reason("agreed by phone");
  reassign.set_by("operator");

  const std::string submitted_bytes = submitted.SerializeAsString();
  const std::string key(kReferralId);
  std::vector<StreamRecord> routed_records;
  for (const router::Output& e : *routed) {
    routed_records.push_back(Rec(e.topic, 0, e.key, *e.value));
  }

  // 0: the router. Records on a load topic (which it does not read) only move its clock on.
  const std::string load_topic = topology::LoadTopic(ExampleNetwork().organisations.front().id);
  Write(dir, "router-accepted",
        EncodeStream(
            0, {Rec(topology::kSubmittedTopic, 0, key, submitted_bytes),
                Rec(from_topic, 0, key, sent(received)), Rec(from_topic, 1, key, sent(accepted))}));
  Write(dir, "router-declined",
        EncodeStream(0, {Rec(topology::kSubmittedTopic, 0, key, submitted_bytes),
                         Rec(from_topic, 0, key, sent(declined))}));
  Write(dir, "router-escalates",
        EncodeStream(0, {Rec(topology::kSubmittedTopic, 0, key, submitted_bytes),
                         Rec(from_topic, 15, key, sent(received)), Rec(load_topic, 15, "", ""),
                         Rec(load_topic, 15, "", ""), Rec(load_topic, 15, "", ""),
                         Rec(load_topic, 15, "", "")}));
  Write(dir, "router-forward-cancel-reassign",
        EncodeStream(0, {Rec(topology::kSubmittedTopic, 0, key, submitted_bytes),
                         Rec(from_topic, 0, key, sent(forward)),
                         Rec(topology::kCancellationsTopic, 0, key, cancel.SerializeAsString()),
                         Rec(topology::kReassignTopic, 0, key, reassign.SerializeAsString())}));
  v1::RouterReferralState state;
  state.set_referral_id(kReferralId);
  v1::RouterNeedState* need = state.add_needs();
  need->set_need_index(first.need_index());
  need->set_need_code(first.need_code());
  *need->mutable_current() = first;
  need->set_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  *need->mutable_accept_by() = google::protobuf::util::TimeUtil::SecondsToTimestamp(kAt + 3600);
  Write(dir, "router-restore",
        EncodeStream(0, {Rec(topology::kRouterStateTopic, 0, key, state.SerializeAsString()),
                         Rec(from_topic, 2, key, sent(received))}));

  // 1 and 3: the first offer's inbox (organisation index in the high bits), live and rebuilding.
  std::uint8_t org_index = 0;
  while (ExampleNetwork().organisations[org_index].id != first.organisation()) ++org_index;
  v1::InboxEvent withdrawn;
  *withdrawn.mutable_withdrawn()->mutable_meta() = Meta(id, kAt + 500);
  withdrawn.mutable_withdrawn()->set_organisation(first.organisation());
  withdrawn.mutable_withdrawn()->set_reason("not accepted in time");
  withdrawn.mutable_withdrawn()->set_next_assignment_id(id + ".1");
  v1::InboxEvent cancel_event;
  *cancel_event.mutable_cancel_requested() = cancel;
  v1::InboxEvent status_event;
  *status_event.mutable_status_changed() = accepted;
  std::vector<StreamRecord> inbox;
  for (const StreamRecord& r : routed_records) {
    if (TopicOf(r.topic_byte) == inbox_topic) inbox.push_back(r);
  }
  std::vector<StreamRecord> inbox_cancel = inbox;
  inbox_cancel.push_back(Rec(inbox_topic, 1, id, cancel_event.SerializeAsString()));
  std::vector<StreamRecord> inbox_withdrawn = inbox;
  inbox_withdrawn.push_back(Rec(inbox_topic, 15, id, withdrawn.SerializeAsString()));
  std::vector<StreamRecord> inbox_replay = inbox;
  inbox_replay.push_back(Rec(inbox_topic, 1, id, status_event.SerializeAsString()));
  Write(dir, "inbox-cancel",
        EncodeStream(static_cast<std::uint8_t>(1 | org_index << 2), inbox_cancel));
  Write(dir, "inbox-withdrawn",
        EncodeStream(static_cast<std::uint8_t>(1 | org_index << 2), inbox_withdrawn));
  Write(dir, "inbox-replay",
        EncodeStream(static_cast<std::uint8_t>(3 | org_index << 2), inbox_replay));

  // 2: intake's view of the referral: submitted, routed (the unroutable needs), answered.
  std::vector<StreamRecord> view{Rec(topology::kSubmittedTopic, 0, key, submitted_bytes)};
  for (const StreamRecord& r : routed_records) view.push_back(r);
  view.push_back(Rec(topology::kStatusTopic, 0, key, received.SerializeAsString()));
  view.push_back(Rec(topology::kStatusTopic, 0, key, accepted.SerializeAsString()));
  Write(dir, "view-story", EncodeStream(2, view));
}

}  // namespace
}  // namespace schakel::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds <dir>\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  schakel::fuzz::ReferralSeeds(dir / "referral_validation_fuzz");
  schakel::fuzz::EventSeeds(dir / "event_decoding_fuzz");
  return 0;
}
