// Routing end to end, on the real binaries against the broker tests/run started, with the small
// network of tests/e2e/data/escalation-network.yaml (housing: alpha, then beta, then gamma):
// - escalation with a moved clock: an offer not accepted in time is withdrawn and offered to the
//   next organisation, also across a router killed with SIGKILL; a decline goes the same way; when
//   nobody is left the need is unroutable with the whole chain; each step happens once;
// - SIGKILL of the router in the middle of a burst of 1,000 referrals: afterwards every need is in
//   exactly one inbox or in the unroutable queue, none twice;
// - two routers share the load, and when one dies the other takes its partitions over without
//   loss or duplicates.
// Nothing waits for an SLA: the router reads its clock offset from a file the test writes.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "libs/kafka/producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/routing.grpc.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::ReadWholeTopic;
using schakel::testing::TestNetwork;

const std::string kNetworkFile =
    std::string(SCHAKEL_SOURCE_DIR) + "/tests/e2e/data/escalation-network.yaml";
constexpr std::chrono::seconds kSlaNormal = std::chrono::hours(72);

v1::Referral Housing(const std::string& client_code, const std::string& region,
                     const std::vector<std::string>& needs) {
  v1::Referral referral;
  referral.mutable_client()->set_client_code(client_code);
  for (const std::string& need : needs) referral.add_needs()->set_code(need);
  referral.set_urgency(v1::URGENCY_NORMAL);
  referral.set_region(region);
  referral.add_languages("nl");
  referral.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"alpha", "beta", "gamma", "delta", "epsilon"}) {
    referral.mutable_sharing()->add_organisations(org);
  }
  return referral;
}

// What reached the organisations and the operators for a set of referrals: per "<referral>/<need
// index>", each offer's assignment id and organisation, and each unroutable entry.
struct Tally {
  std::map<std::string, std::vector<std::string>> offers;  // need -> "a-…@org", in topic order
  std::map<std::string, std::vector<std::string>> unroutable;  // need -> unroutable assignment ids
};

Tally Read(const TestNetwork& net, const std::set<std::string>& referral_ids) {
  Tally tally;
  for (const routing::Organisation& org : net.network().organisations) {
    for (const kafka::Record& r : ReadWholeTopic(net.kafka(), topology::InboxTopic(org.id))) {
      v1::InboxEvent event;
      if (!event.ParseFromString(r.value) || !event.has_requested()) continue;
      const v1::AssignmentRequested& offer = event.requested();
      if (!referral_ids.contains(offer.meta().referral_id())) continue;
      tally.offers[offer.meta().referral_id() + "/" + std::to_string(offer.need_index())].push_back(
          offer.meta().assignment_id() + "@" + org.id);
    }
  }
  for (const kafka::Record& r :
       ReadWholeTopic(net.kafka(), std::string(topology::kUnroutableTopic))) {
    v1::ReferralUnroutable event;
    if (!event.ParseFromString(r.value) || !referral_ids.contains(event.meta().referral_id())) {
      continue;
    }
    tally.unroutable[event.meta().referral_id() + "/" + std::to_string(event.need_index())]
        .push_back(event.meta().assignment_id());
  }
  return tally;
}

// Every need of every referral exactly once (an offer or an unroutable entry): lists what is
// missing or doubled.
::testing::AssertionResult EachNeedExactlyOnce(const Tally& tally,
                                               const std::map<std::string, int>& needs_of) {
  std::vector<std::string> problems;
  std::size_t ok = 0;
  for (const auto& [referral_id, needs] : needs_of) {
    for (int i = 0; i < needs; ++i) {
      const std::string key = referral_id + "/" + std::to_string(i);
      const auto offers = tally.offers.find(key);
      const auto unroutable = tally.unroutable.find(key);
      const std::size_t n = (offers == tally.offers.end() ? 0 : offers->second.size()) +
                            (unroutable == tally.unroutable.end() ? 0 : unroutable->second.size());
      if (n == 1) {
        ++ok;
      } else if (problems.size() < 10) {
        problems.push_back(key + " seen " + std::to_string(n) + " times");
      }
    }
  }
  if (problems.empty()) return ::testing::AssertionSuccess() << ok << " needs, each once";
  auto failure = ::testing::AssertionFailure() << ok << " needs once; first problems:";
  for (const std::string& p : problems) failure << "\n  " << p;
  return failure;
}

class RoutingE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    net_ = new TestNetwork("routing-e2e", kNetworkFile);
    ASSERT_TRUE(net_->Prepare());
    clock_file_ = new std::string((net_->dir() / "router-clock-offset").string());
    SetClockOffset(std::chrono::seconds(0));
    net_->AddInboxes();
    net_->AddRouter("e2e-1", {"--clock-offset-file", *clock_file_, "--tick-ms", "200"});
    net_->AddIntake();
    ASSERT_TRUE(net_->StartAll());
  }
  static void TearDownTestSuite() {
    delete net_;
    delete clock_file_;
  }

  static void SetClockOffset(std::chrono::seconds offset) {
    std::ofstream(*clock_file_) << offset.count() << "\n";
  }

  // Submits `count` referrals from 8 threads; returns the acknowledged referral ids with their
  // number of needs. `after_each(n)` runs after the n-th acknowledgement (in the thread that got
  // it).
  static std::map<std::string, int> Burst(const std::string& prefix, int count,
                                          const std::function<void(int)>& after_each = nullptr) {
    std::mutex mu;
    std::map<std::string, int> acknowledged;
    std::atomic<int> next{0};
    std::atomic<int> acked{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 8; ++w) {
      workers.emplace_back([&] {
        auto intake = net_->Intake();
        for (int i = next++; i < count; i = next++) {
          // Every fourth client lives in the village, where nobody takes debt: unroutable.
          const bool village = i % 4 == 0;
          v1::Referral referral = Housing(prefix + "-" + std::to_string(i),
                                          village ? "dorp" : "stad", {"housing", "debt"});
          v1::SubmitReferralResponse response;
          grpc::Status status;
          for (int attempt = 0; attempt < 3; ++attempt) {
            grpc::ClientContext context;
            schakel::testing::PrepareCall(context, "gamma", std::chrono::seconds(15));
            v1::SubmitReferralRequest request;
            *request.mutable_referral() = referral;
            status = intake->SubmitReferral(&context, request, &response);
            if (status.ok()) break;
          }
          if (!status.ok()) continue;  // not acknowledged: nothing is promised for it
          {
            std::lock_guard lock(mu);
            acknowledged[response.referral_id()] = 2;
          }
          const int n = ++acked;
          if (after_each) after_each(n);
        }
      });
    }
    for (std::thread& t : workers) t.join();
    return acknowledged;
  }

  static std::set<std::string> Ids(const std::map<std::string, int>& referrals) {
    std::set<std::string> ids;
    for (const auto& [id, needs] : referrals) ids.insert(id);
    return ids;
  }

  // Waits until every need of `referrals` reached an inbox topic or the unroutable topic, then
  // checks that each did exactly once.
  static ::testing::AssertionResult AllRoutedExactlyOnce(
      const std::map<std::string, int>& referrals) {
    const std::set<std::string> ids = Ids(referrals);
    std::size_t expected = 0;
    for (const auto& [id, needs] : referrals) expected += static_cast<std::size_t>(needs);
    Tally tally;
    Eventually(
        [&] {
          tally = Read(*net_, ids);
          std::size_t seen = 0;
          for (const auto& [k, v] : tally.offers) seen += v.size();
          for (const auto& [k, v] : tally.unroutable) seen += v.size();
          return seen >= expected;
        },
        std::chrono::seconds(120));
    return EachNeedExactlyOnce(tally, referrals);
  }

  static inline TestNetwork* net_ = nullptr;
  static inline std::string* clock_file_ = nullptr;
};

TEST_F(RoutingE2eTest, OffersNotAcceptedInTimeOrDeclinedMoveOnUntilNobodyIsLeft) {
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(net_->Submit(Housing("RT-ESC-1", "stad", {"housing"}), "gamma", &submitted).ok());
  const std::string first = submitted.assignment_ids(0);
  ASSERT_TRUE(net_->WaitForStatus("alpha", first, v1::ASSIGNMENT_STATUS_RECEIVED));

  // Three days and an hour later (the network's SLA for normal urgency is three days).
  const std::chrono::seconds step = kSlaNormal + std::chrono::hours(1);
  SetClockOffset(step);
  std::optional<v1::Assignment> withdrawn =
      net_->WaitForStatus("alpha", first, v1::ASSIGNMENT_STATUS_CANCELLED);
  ASSERT_TRUE(withdrawn) << "alpha's offer was not withdrawn";
  EXPECT_EQ(withdrawn->status_reason(), "not accepted in time");
  EXPECT_EQ(withdrawn->history(withdrawn->history_size() - 1).by(), "network");
  const std::string second = first + ".1";
  std::optional<v1::Assignment> at_beta =
      net_->WaitForStatus("beta", second, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(at_beta) << "the need was not offered to beta";
  EXPECT_EQ(at_beta->forwarded_from(), first);

  // The deadline of the second offer lives in the router's state topic: it survives a SIGKILL.
  schakel::testing::Service& router = net_->Find("router-e2e-1");
  router.process->Kill(SIGKILL);
  net_->Launch(router);
  ASSERT_TRUE(net_->WaitUntilServing(router));
  SetClockOffset(2 * step);
  ASSERT_TRUE(net_->WaitForStatus("beta", second, v1::ASSIGNMENT_STATUS_CANCELLED))
      << "beta's offer was not withdrawn after the router restarted";
  const std::string third = first + ".2";
  std::optional<v1::Assignment> at_gamma =
      net_->WaitForStatus("gamma", third, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(at_gamma) << "the need was not offered to gamma";

  // Gamma declines: nobody is left.
  v1::Assignment declined;
  ASSERT_TRUE(net_->Decline("gamma", *at_gamma, "no room", &declined).ok());
  std::vector<v1::ReferralUnroutable> unroutable;
  ASSERT_TRUE(Eventually([&] {
    unroutable.clear();
    for (const kafka::Record& r :
         ReadWholeTopic(net_->kafka(), std::string(topology::kUnroutableTopic))) {
      v1::ReferralUnroutable event;
      if (event.ParseFromString(r.value) && event.meta().referral_id() == submitted.referral_id()) {
        unroutable.push_back(event);
      }
    }
    return !unroutable.empty();
  }));
  ASSERT_EQ(unroutable.size(), 1u);
  std::vector<std::string> chain;
  for (const v1::PassedOver& p : unroutable[0].passed_over()) {
    chain.push_back(p.organisation() + ": " + p.reason());
  }
  EXPECT_EQ(chain, (std::vector<std::string>{
                       "alpha: offered (" + first + "): not accepted in time",
                       "beta: offered (" + second + "): not accepted in time",
                       "gamma: offered (" + third + "): declined",
                       "delta: does not serve need 'housing'",
                       "epsilon: does not serve need 'housing'",
                   }));

  // Operators see it too, from the command line.
  const std::string schakelctl = std::string(SCHAKEL_BINARY_DIR) + "/tools/schakelctl/schakelctl";
  std::string output;
  ASSERT_EQ(
      schakel::testing::RunCommand(
          {schakelctl, "unroutable", "--network", kNetworkFile, "--kafka", net_->kafka()}, &output),
      0)
      << output;
  EXPECT_NE(output.find("    alpha: offered (" + first +
                        "): not accepted in time\n"
                        "    beta: offered (" +
                        second +
                        "): not accepted in time\n"
                        "    gamma: offered (" +
                        third + "): declined\n"),
            std::string::npos)
      << output;
  ASSERT_EQ(schakel::testing::RunCommand({schakelctl, "referral", submitted.referral_id(),
                                          "--network", kNetworkFile, "--kafka", net_->kafka()},
                                         &output),
            0)
      << output;
  EXPECT_NE(output.find(first + "  housing  alpha  RECEIVED -> CANCELLED  by network  (not "
                                "accepted in time)"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find(third + "  housing  gamma  RECEIVED -> REJECTED  by gamma\n"),
            std::string::npos)
      << output;
  EXPECT_EQ(output.find("no room"), std::string::npos)
      << "an organisation's own words stay in its inbox";

  // The referrer sees the whole chain and that nobody could take the need.
  std::optional<v1::ReferralStatus> seen = net_->WaitForReferral(
      "gamma", submitted.referral_id(),
      [](const v1::ReferralStatus& s) { return s.needs_size() == 1 && s.needs(0).unroutable(); });
  ASSERT_TRUE(seen) << "the referrer does not see the need as unroutable";
  std::set<std::string> in_history;
  for (const v1::ReferralEvent& e : seen->needs(0).history()) in_history.insert(e.assignment_id());
  EXPECT_TRUE(in_history.contains(first) && in_history.contains(second) &&
              in_history.contains(third))
      << "history holds " << in_history.size() << " assignments";

  // Each step once: one withdrawal per offer, one offer per organisation.
  SetClockOffset(3 * step);  // a further tick past every deadline changes nothing
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const Tally tally = Read(*net_, {submitted.referral_id()});
  EXPECT_EQ(tally.offers.at(submitted.referral_id() + "/0"),
            (std::vector<std::string>{first + "@alpha", second + "@beta", third + "@gamma"}));
  int withdrawals = 0;
  for (const char* org : {"alpha", "beta", "gamma"}) {
    for (const kafka::Record& r : ReadWholeTopic(net_->kafka(), topology::InboxTopic(org))) {
      v1::InboxEvent event;
      if (event.ParseFromString(r.value) && event.has_withdrawn() &&
          event.withdrawn().meta().referral_id() == submitted.referral_id()) {
        ++withdrawals;
      }
    }
  }
  EXPECT_EQ(withdrawals, 2);  // alpha's and beta's; gamma declined
}

TEST_F(RoutingE2eTest, RouterKilledInTheMiddleOfABurstLosesAndDuplicatesNothing) {
  schakel::testing::Service& router = net_->Find("router-e2e-1");
  std::atomic<bool> killed{false};
  const std::map<std::string, int> referrals = Burst("RT-BURST", 1000, [&](int acknowledged) {
    if (acknowledged == 300 && !killed.exchange(true)) {
      router.process->Kill(SIGKILL);
      net_->Launch(router);
    }
  });
  ASSERT_TRUE(killed.load());
  EXPECT_GE(referrals.size(), 990u) << "intake acknowledged too few to tell";
  ASSERT_TRUE(net_->WaitUntilServing(router));
  EXPECT_TRUE(AllRoutedExactlyOnce(referrals));
}

TEST_F(RoutingE2eTest, TwoRoutersShareTheLoadAndOneTakesOverWhenTheOtherDies) {
  schakel::testing::Service& second =
      net_->AddRouter("e2e-2", {"--clock-offset-file", *clock_file_, "--tick-ms", "200"});
  net_->Launch(second);
  ASSERT_TRUE(net_->WaitUntilServing(second));
  schakel::testing::Service& first = net_->Find("router-e2e-1");
  // Both own partitions once the group has rebalanced: each logs what it restored.
  auto owns_partitions = [](const schakel::testing::Service& s) {
    const std::string log = s.process->ReadLog();
    const std::size_t last = log.rfind("restored partitions [");
    return last != std::string::npos && log.compare(last + 21, 1, "]") != 0;
  };
  ASSERT_TRUE(Eventually([&] { return owns_partitions(first) && owns_partitions(second); }))
      << "the two routers did not share the partitions";

  const std::map<std::string, int> shared = Burst("RT-SHARED", 200);
  EXPECT_TRUE(AllRoutedExactlyOnce(shared));

  // One dies without leaving the group; the other takes its partitions over.
  first.process->Kill(SIGKILL);
  const std::map<std::string, int> after = Burst("RT-TAKEOVER", 200);
  EXPECT_TRUE(AllRoutedExactlyOnce(after));
  EXPECT_TRUE(owns_partitions(second));
}

// Capacity: delta takes one shelter client at a time. Its inbox reports its open assignments on
// its own schakel.load.delta; the router follows them, so the second client goes to epsilon.
TEST_F(RoutingE2eTest, AnOrganisationAtCapacityIsPassedOver) {
  v1::SubmitReferralResponse first;
  ASSERT_TRUE(net_->Submit(Housing("RT-CAP-1", "stad", {"shelter"}), "gamma", &first).ok());
  ASSERT_TRUE(
      net_->WaitForStatus("delta", first.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED));

  // The router's own explanation shows when it has learnt delta's load.
  // Any running router (an earlier test may have killed the first).
  schakel::testing::Service* running = &net_->Find("router-e2e-1");
  if (!running->process->running()) running = &net_->Find("router-e2e-2");
  auto router = v1::RoutingService::NewStub(schakel::testing::TestChannel(running->address));
  v1::ExplainRouteResponse explained;
  ASSERT_TRUE(Eventually([&] {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "gamma");
    v1::ExplainRouteRequest request;
    *request.mutable_referral() = Housing("RT-CAP-2", "stad", {"shelter"});
    explained.Clear();
    return router->ExplainRoute(&context, request, &explained).ok() &&
           explained.routes_size() == 1 && explained.routes(0).organisation() == "epsilon";
  })) << "the router did not learn that delta is full";
  std::vector<std::string> reasons;
  for (const v1::PassedOver& p : explained.routes(0).passed_over()) {
    if (p.organisation() == "delta") reasons.push_back(p.reason());
  }
  EXPECT_EQ(reasons, std::vector<std::string>{"at capacity (1 of 1 open)"});

  v1::SubmitReferralResponse second;
  ASSERT_TRUE(net_->Submit(Housing("RT-CAP-2", "stad", {"shelter"}), "gamma", &second).ok());
  EXPECT_TRUE(
      net_->WaitForStatus("epsilon", second.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED));
  v1::Assignment not_at_delta;
  EXPECT_EQ(net_->Get("delta", second.assignment_ids(0), &not_at_delta).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Delta declines: it has room again (for a later run against the same broker, too).
  std::optional<v1::Assignment> at_delta =
      net_->WaitForStatus("delta", first.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(at_delta);
  v1::Assignment declined;
  EXPECT_TRUE(net_->Decline("delta", *at_delta, "no bed tonight", &declined).ok());
}

// Duplicate intake: the same client referred again for a need that is still open is linked to the
// open assignment; only the new need is offered.
TEST_F(RoutingE2eTest, ASecondReferralForANeedStillOpenIsLinkedNotOfferedTwice) {
  v1::SubmitReferralResponse first;
  ASSERT_TRUE(net_->Submit(Housing("RT-DUP-1", "stad", {"housing"}), "gamma", &first).ok());
  const std::string open = first.assignment_ids(0);
  ASSERT_TRUE(net_->WaitForStatus("alpha", open, v1::ASSIGNMENT_STATUS_RECEIVED));
  ASSERT_TRUE(net_->WaitForReferral("gamma", first.referral_id(), [&](const v1::ReferralStatus& s) {
    return s.needs_size() == 1 && s.needs(0).assignment_id() == open;
  })) << "intake's view did not learn where the first referral went";

  v1::SubmitReferralResponse second;
  ASSERT_TRUE(
      net_->Submit(Housing("RT-DUP-1", "stad", {"housing", "debt"}), "gamma", &second).ok());
  ASSERT_EQ(second.linked_size(), 1);
  EXPECT_EQ(second.linked(0).need_index(), 0u);
  EXPECT_EQ(second.linked(0).assignment_id(), open);
  EXPECT_EQ(second.linked(0).organisation(), "alpha");

  // Debt is offered to gamma; housing is not offered a second time, nor sent to unroutable.
  ASSERT_TRUE(
      net_->WaitForStatus("gamma", second.assignment_ids(1), v1::ASSIGNMENT_STATUS_RECEIVED));
  std::optional<v1::ReferralStatus> seen =
      net_->WaitForReferral("gamma", second.referral_id(), [](const v1::ReferralStatus& s) {
        return s.needs_size() == 2 && !s.needs(1).assignment_id().empty();
      });
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->needs(0).linked_to(), open);
  const Tally tally = Read(*net_, {second.referral_id()});
  EXPECT_FALSE(tally.offers.contains(second.referral_id() + "/0"));
  EXPECT_FALSE(tally.unroutable.contains(second.referral_id() + "/0"));
  EXPECT_EQ(tally.offers.at(second.referral_id() + "/1"),
            std::vector<std::string>{second.assignment_ids(1) + "@gamma"});
}

// Poison records: what a consumer cannot decode goes to its own dead-letter topic
// (schakel.deadletters.<principal>) with the reason, the consumer goes on with the next record, and
// an operator can list every consumer's dead letters. (Re-driving them goes through ops:
// tests/e2e/redrive_e2e_test.cc.)
TEST_F(RoutingE2eTest, PoisonRecordsGoToTheDeadLettersAndEveryoneKeepsGoing) {
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka::Producer::Create({.bootstrap_servers = net_->kafka(),
                               .client_id = "poison",
                               .delivery_timeout = std::chrono::seconds(15),
                               .extra = {}});
  ASSERT_TRUE(producer.ok()) << producer.status();
  const std::string poison = "\xff\xff\xff not an event";
  const std::string marker = "poison-" + std::to_string(::getpid());
  for (const std::string& topic :
       {std::string(topology::kSubmittedTopic), std::string(topology::kStatusTopic),
        topology::FromTopic("alpha"), topology::InboxTopic("alpha")}) {
    std::promise<absl::Status> acknowledged;
    (*producer)->Publish(topic, marker, poison,
                         [&acknowledged](absl::Status s) { acknowledged.set_value(s); });
    ASSERT_TRUE(acknowledged.get_future().get().ok());
  }
  (*producer)->Close(std::chrono::seconds(5));

  // The network goes on: a referral after the poison is routed.
  v1::SubmitReferralResponse after;
  ASSERT_TRUE(net_->Submit(Housing("RT-POISON-1", "stad", {"housing"}), "gamma", &after).ok());
  EXPECT_TRUE(
      net_->WaitForStatus("alpha", after.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED));

  // Each consumer that read a poison record left it as a dead letter, with the record intact.
  std::multiset<std::string> who;
  ASSERT_TRUE(Eventually([&] {
    who.clear();
    for (const std::string& principal : topology::DeadLetterPrincipals(net_->network())) {
      for (const kafka::Record& r :
           ReadWholeTopic(net_->kafka(), topology::DeadLetterTopic(principal))) {
        v1::DeadLetter letter;
        if (!letter.ParseFromString(r.value) || letter.key() != marker) continue;
        EXPECT_EQ(letter.value(), poison);
        EXPECT_EQ(r.key, letter.topic() + "/" + std::to_string(letter.partition()) + "/" +
                             std::to_string(letter.offset()));
        EXPECT_FALSE(letter.reason().empty());
        who.insert(principal + ": " + letter.consumer() + " <- " + letter.topic());
      }
    }
    return who.size() >= 6;
  })) << who.size()
      << " dead letters";
  // (The status topic has two readers here: intake's view and the key service, which looks for
  // the router's offers among the facts.)
  EXPECT_EQ(who, (std::multiset<std::string>{
                     "router: router <- schakel.referrals.submitted",
                     "router: router <- schakel.from.alpha",
                     "intake: intake-view <- schakel.referrals.submitted",
                     "intake: intake-view <- schakel.assignments.status",
                     "keys: keys-grants <- schakel.assignments.status",
                     "inbox-alpha: inbox-alpha <- schakel.inbox.alpha",
                 }));

  // The operator's view: every consumer's dead letters.
  std::string output;
  const std::string schakelctl = std::string(SCHAKEL_BINARY_DIR) + "/tools/schakelctl/schakelctl";
  ASSERT_EQ(schakel::testing::RunCommand(
                {schakelctl, "dlq", "list", "--network", kNetworkFile, "--kafka", net_->kafka()},
                &output),
            0)
      << output;
  EXPECT_NE(output.find("schakel.deadletters.inbox-alpha"), std::string::npos) << output;
  EXPECT_NE(output.find("schakel.deadletters.router"), std::string::npos) << output;
  EXPECT_NE(output.find("schakel.deadletters.intake"), std::string::npos) << output;
  EXPECT_NE(output.find("schakel.deadletters.keys"), std::string::npos) << output;
  EXPECT_EQ(output.find(poison), std::string::npos) << "the payload is never printed";
}

// Idempotency: a referral submitted with a key and retried after intake restarted is the same
// referral; the key cannot be reused for another one; the need is offered once.
TEST_F(RoutingE2eTest, ARetryWithTheSameIdempotencyKeyIsTheSameReferralAcrossAnIntakeRestart) {
  auto submit = [](const v1::Referral& referral, v1::SubmitReferralResponse* response) {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "gamma", std::chrono::seconds(15));
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = referral;
    request.set_idempotency_key("gamma-RT-IDEM-" + std::to_string(::getpid()));
    return net_->Intake()->SubmitReferral(&context, request, response);
  };
  const v1::Referral referral = Housing("RT-IDEM-1", "stad", {"housing"});
  v1::SubmitReferralResponse first;
  ASSERT_TRUE(submit(referral, &first).ok());
  ASSERT_TRUE(net_->WaitForReferral("gamma", first.referral_id(),
                                    [](const v1::ReferralStatus&) { return true; }));

  schakel::testing::Service& intake = net_->Find("intake");
  ASSERT_EQ(intake.process->Stop(), 0) << intake.process->ReadLog();
  net_->Launch(intake);
  ASSERT_TRUE(net_->WaitUntilServing(intake));

  v1::SubmitReferralResponse retry;
  grpc::Status status = submit(referral, &retry);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(retry.referral_id(), first.referral_id());
  v1::SubmitReferralResponse reused;
  EXPECT_EQ(submit(Housing("RT-IDEM-2", "stad", {"housing"}), &reused).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  ASSERT_TRUE(
      net_->WaitForStatus("alpha", first.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED));
  std::vector<std::string> submissions;
  for (const kafka::Record& r :
       ReadWholeTopic(net_->kafka(), std::string(topology::kSubmittedTopic))) {
    if (r.key == first.referral_id()) submissions.push_back(r.key);
  }
  EXPECT_EQ(submissions.size(), 1u) << "the retry published nothing";
  EXPECT_TRUE(EachNeedExactlyOnce(Read(*net_, {first.referral_id()}), {{first.referral_id(), 1}}));
}

}  // namespace
}  // namespace schakel
