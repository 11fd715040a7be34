// End-to-end latency of the running network, open loop: submits referrals to intake at a constant
// rate and times each one until its assignment appears in the target organisation's inbox
// (InboxService.WatchAssignments), which is what the partner sees.
//
// Referral i is due at start + i / rate. The sender never waits for an answer, and every latency is
// measured from that intended send time, not from when the call actually went out: when intake (or
// this program) falls behind, the backlog shows up in the figures instead of being hidden
// (coordinated omission). Each referral carries a unique client code and idempotency key and a
// marker in its need's details, by which its assignment is recognised in the stream.
//
//   e2e_latency --intake 127.0.0.1:P[,127.0.0.1:P2...] --inbox 127.0.0.1:Q --as verwijzer
//               --target zorg --need health --region stad --rate 500 --duration 20 [--warmup 2]
//               [--raw FILE]
//
// With several intakes the referrals take turns (referral i goes to intake i modulo their number).
// Prints one JSON object: the rate asked for and achieved, counts (acknowledged, refused, past
// their deadline, failed otherwise, arrived, acknowledged but missing), and the latency summaries
// in milliseconds of the acknowledgement ("ack": intake answered OK after Kafka's acks=all) and of
// the assignment's arrival ("e2e"), and the arrival split at the router's decision (the offer's
// requested_at, the router's clock: the same machine's): "to_router" from the intended send time
// until the router decided, "from_router" from then until the assignment was in the stream (its
// transaction's commit, the inbox reading it, the key, the inbox's store). --raw writes every
// end-to-end latency (ms, sorted), one per line, for plots.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/latency_stats.h"
#include "libs/service/security.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"

namespace schakel::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kNotYet = -1;

struct Options {
  std::string pki;
  std::vector<std::string> intakes;  // referral i goes to intakes[i % size]
  std::string inbox;
  std::string as;
  std::string target;
  std::string need = "health";
  std::string region;
  double rate = 100;
  double duration_s = 10;
  double warmup_s = 1;
  double drain_s = 30;
  std::string raw_file;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

class Run {
 public:
  std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& organisation) const {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        schakel::service::ClientCredentials(
            {.cert = options_.pki + "/organisations/" + organisation + ".pem",
             .key = options_.pki + "/organisations/" + organisation + ".key",
             .ca = options_.pki + "/ca.pem"});
    if (!credentials.ok()) {
      std::cerr << "e2e_latency: " << credentials.status().message() << "\n";
      std::exit(2);
    }
    return *credentials;
  }

  explicit Run(const Options& options)
      : options_(options),
        run_id_(std::to_string(std::random_device{}() % 1000000000u)),
        marker_("e2e-bench " + run_id_ + " "),
        warmup_(static_cast<std::size_t>(options.warmup_s * options.rate)),
        total_(warmup_ + static_cast<std::size_t>(options.duration_s * options.rate)),
        sent_at_(total_),
        acked_at_(total_),
        arrived_at_(total_),
        decided_at_(total_),
        code_(total_) {
    for (std::size_t i = 0; i < total_; ++i) {
      sent_at_[i] = kNotYet;
      acked_at_[i] = kNotYet;
      arrived_at_[i] = kNotYet;
      decided_at_[i] = kNotYet;
      code_[i] = kNoAnswer;
    }
    // TLS with the organisations' client certificates (deploy/local/pki's folder): the referrer's
    // to intake, the target's to its inbox.
    for (const std::string& address : options.intakes) {
      intakes_.push_back(
          v1::IntakeService::NewStub(grpc::CreateChannel(address, Credentials(options.as))));
    }
    inbox_ =
        v1::InboxService::NewStub(grpc::CreateChannel(options.inbox, Credentials(options.target)));
  }

  int Execute() {
    std::thread watcher([this] { Watch(); });
    // The probe: once its assignment is in the stream, everything the inbox held before has been
    // delivered (the stream is in sequence order), and the whole path is known to work.
    probe_sent_ = Clock::now();
    Submit(kProbe);
    bool probe_ok = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      probe_ok = cv_.wait_for(lock, std::chrono::seconds(60), [this] { return probe_arrived_; });
    }
    if (!probe_ok) {
      std::cerr << "e2e_latency: the probe referral did not reach the inbox within 60 s\n";
      StopWatch(watcher);
      return 1;
    }

    const auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / options_.rate));
    start_ = Clock::now() + std::chrono::milliseconds(50);
    start_system_ = std::chrono::system_clock::now() + std::chrono::milliseconds(50);
    Clock::duration max_lag{0};
    for (std::size_t i = 0; i < total_; ++i) {
      const Clock::time_point due = Intended(i, period);
      if (Clock::now() < due) std::this_thread::sleep_until(due);
      max_lag = std::max(max_lag, Clock::now() - due);
      sent_at_[i] = (Clock::now() - start_).count();
      Submit(static_cast<std::int64_t>(i));
    }
    const Clock::time_point last_sent = Clock::now();

    // Wait for every acknowledgement and every arrival (or give up after --drain).
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock,
                     last_sent + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(options_.drain_s)),
                     [this] { return finished_ + arrived_ >= 2 * total_; });
    }
    StopWatch(watcher);

    std::vector<double> ack;
    std::vector<double> e2e;
    std::vector<double> to_router;
    std::vector<double> from_router;
    // acked: answered OK; refused: RESOURCE_EXHAUSTED (intake took nothing: such a referral never
    // arrives); deadline: DEADLINE_EXCEEDED; failed: any other error. missing: acknowledged but not
    // arrived (lost, or slower than --drain).
    std::size_t acked_all = 0;  // the warm-up's too: what the CPU over the whole run paid for
    for (std::size_t i = 0; i < total_; ++i) {
      if (code_[i].load() == grpc::StatusCode::OK) ++acked_all;
    }
    std::vector<double> refused_ms;
    std::size_t acked = 0, refused = 0, deadline = 0, failed = 0, arrived = 0, missing = 0;
    for (std::size_t i = warmup_; i < total_; ++i) {
      const Clock::time_point due = Intended(i, period);
      const std::int64_t a = acked_at_[i].load();
      const std::int64_t r = arrived_at_[i].load();
      const int code = code_[i].load();
      if (code == grpc::StatusCode::OK) {
        ++acked;
        ack.push_back(Ms(start_ + Clock::duration(a) - due));
      } else if (code == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++refused;
        refused_ms.push_back(Ms(start_ + Clock::duration(a) - due));
      } else if (code == grpc::StatusCode::DEADLINE_EXCEEDED) {
        ++deadline;
      } else {
        ++failed;
      }
      if (r != kNotYet) {
        ++arrived;
        e2e.push_back(Ms(start_ + Clock::duration(r) - due));
        const std::int64_t d = decided_at_[i].load();
        to_router.push_back(Ms(start_ + Clock::duration(d) - due));
        from_router.push_back(Ms(Clock::duration(r - d)));
      } else if (code == grpc::StatusCode::OK) {
        ++missing;
      }
    }
    const Summary refused_summary = Summarise(refused_ms);
    const Summary ack_summary = Summarise(ack);
    const Summary e2e_summary = Summarise(e2e);
    const std::size_t measured = total_ - warmup_;
    const double send_seconds =
        measured > 1 ? std::chrono::duration<double>(
                           Clock::duration(sent_at_[total_ - 1].load() - sent_at_[warmup_].load()))
                           .count()
                     : 0;
    std::printf(
        "{\"rate\":%.1f,\"duration_s\":%.1f,\"submitted\":%zu,\"achieved_rate\":%.1f,"
        "\"max_send_lag_ms\":%.3f,\"acked\":%zu,\"acked_all\":%zu,\"acked_rate\":%.1f,"
        "\"refused\":%zu,\"deadline_exceeded\":%zu,\"failed\":%zu,\"arrived\":%zu,\"missing\":%zu,"
        "\"probe_ms\":%.3f,\"ack_ms\":%s,\"refused_ms\":%s,\"e2e_ms\":%s,\"to_router_ms\":%s,"
        "\"from_router_ms\":%s}\n",
        options_.rate, options_.duration_s, measured,
        send_seconds > 0 ? static_cast<double>(measured - 1) / send_seconds : 0.0, Ms(max_lag),
        acked, acked_all, send_seconds > 0 ? static_cast<double>(acked) / send_seconds : 0.0,
        refused, deadline, failed, arrived, missing, probe_ms_, ToJson(ack_summary).c_str(),
        ToJson(refused_summary).c_str(), ToJson(e2e_summary).c_str(),
        ToJson(Summarise(to_router)).c_str(), ToJson(Summarise(from_router)).c_str());
    if (!options_.raw_file.empty()) {
      std::ofstream raw(options_.raw_file);
      for (double v : e2e) raw << v << "\n";
    }
    return 0;
  }

 private:
  static constexpr std::int64_t kProbe = -1;

  Clock::time_point Intended(std::size_t i, Clock::duration period) const {
    return start_ + period * static_cast<std::int64_t>(i);
  }

  std::string Tag(std::int64_t i) const {
    return i == kProbe ? marker_ + "probe" : marker_ + std::to_string(i);
  }

  // One asynchronous SubmitReferral; the answer is recorded from gRPC's callback thread.
  void Submit(std::int64_t i) {
    struct Call {
      grpc::ClientContext context;
      v1::SubmitReferralRequest request;
      v1::SubmitReferralResponse response;
    };
    auto call = std::make_shared<Call>();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const std::string n = i == kProbe ? "probe" : std::to_string(i);
    call->request.set_idempotency_key("e2e-" + run_id_ + "-" + n);
    v1::Referral* referral = call->request.mutable_referral();
    referral->mutable_client()->set_client_code("E2E-" + run_id_ + "-" + n);
    v1::NeedRequest* need = referral->add_needs();
    need->set_code(options_.need);
    need->set_details(Tag(i));
    referral->set_urgency(v1::URGENCY_NORMAL);
    referral->set_region(options_.region);
    referral->add_languages("nl");
    referral->mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
    referral->mutable_sharing()->add_organisations(options_.target);
    // The probe goes to the first intake; referral i to intake i modulo their number.
    const std::size_t which = i == kProbe ? 0 : static_cast<std::size_t>(i) % intakes_.size();
    intakes_[which]->async()->SubmitReferral(
        &call->context, &call->request, &call->response, [this, call, i](grpc::Status status) {
          if (i == kProbe) {
            if (!status.ok()) {
              std::cerr << "e2e_latency: the probe was refused: " << status.error_message() << "\n";
            }
            return;
          }
          const auto index = static_cast<std::size_t>(i);
          code_[index] = status.error_code();
          if (!status.ok() && status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
            if (first_error_.exchange(true) == false) {
              std::cerr << "e2e_latency: SubmitReferral failed: " << status.error_code() << " "
                        << status.error_message() << "\n";
            }
          }
          acked_at_[index] = (Clock::now() - start_).count();
          std::lock_guard<std::mutex> lock(mu_);
          ++finished_;
          // A refused referral was not taken: it will not arrive.
          if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++finished_;
          if (finished_ + arrived_ >= 2 * total_) cv_.notify_all();
        });
  }

  void Watch() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
    {
      std::lock_guard<std::mutex> lock(mu_);
      watch_context_ = &context;
    }
    v1::WatchAssignmentsRequest request;
    std::unique_ptr<grpc::ClientReader<v1::AssignmentChange>> reader =
        inbox_->WatchAssignments(&context, request);
    v1::AssignmentChange change;
    while (reader->Read(&change)) {
      const std::string& details = change.assignment().need_details();
      if (details.compare(0, marker_.size(), marker_) != 0) continue;
      const std::string rest = details.substr(marker_.size());
      std::lock_guard<std::mutex> lock(mu_);
      if (rest == "probe") {
        if (!probe_arrived_) probe_ms_ = Ms(Clock::now() - probe_sent_);
        probe_arrived_ = true;
        cv_.notify_all();
        continue;
      }
      const std::size_t i = std::stoul(rest);
      // Later changes of the same assignment (received, ...) are not its arrival.
      if (i >= total_ || arrived_at_[i].load() != kNotYet) continue;
      arrived_at_[i] = (Clock::now() - start_).count();
      // The router's decision on this machine's wall clock, as ticks since start_ like the rest.
      const auto decided = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::seconds(change.assignment().requested_at().seconds()) +
              std::chrono::nanoseconds(change.assignment().requested_at().nanos())));
      decided_at_[i] = std::chrono::duration_cast<Clock::duration>(decided - start_system_).count();
      ++arrived_;
      if (finished_ + arrived_ >= 2 * total_) cv_.notify_all();
    }
    const grpc::Status status = reader->Finish();
    std::lock_guard<std::mutex> lock(mu_);
    if (!status.ok() && !stopping_) {
      std::cerr << "e2e_latency: WatchAssignments ended: " << status.error_message() << "\n";
    }
    watch_context_ = nullptr;
  }

  void StopWatch(std::thread& watcher) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (watch_context_ != nullptr) watch_context_->TryCancel();
    }
    watcher.join();
  }

  const Options options_;
  const std::string run_id_;
  const std::string marker_;
  const std::size_t warmup_;
  const std::size_t total_;
  std::vector<std::unique_ptr<v1::IntakeService::Stub>> intakes_;
  std::unique_ptr<v1::InboxService::Stub> inbox_;
  Clock::time_point start_;
  std::chrono::system_clock::time_point start_system_;  // start_ on the wall clock
  Clock::time_point probe_sent_;
  // Per referral, in steady-clock ticks since start_ (kNotYet until it happens).
  std::vector<std::atomic<std::int64_t>> sent_at_;
  std::vector<std::atomic<std::int64_t>> acked_at_;
  std::vector<std::atomic<std::int64_t>> arrived_at_;
  std::vector<std::atomic<std::int64_t>> decided_at_;  // the router's decision (requested_at)
  // Per referral, its answer's status code (kNoAnswer until it is answered).
  static constexpr int kNoAnswer = -1;
  std::vector<std::atomic<int>> code_;
  std::atomic<bool> first_error_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t finished_ = 0;
  std::size_t arrived_ = 0;
  bool probe_arrived_ = false;
  double probe_ms_ = 0;
  bool stopping_ = false;
  grpc::ClientContext* watch_context_ = nullptr;
};

}  // namespace
}  // namespace schakel::bench

int main(int argc, char** argv) {
  schakel::bench::Options options;
  CLI::App app{"Open-loop end-to-end latency: SubmitReferral until the assignment is in the inbox"};
  app.add_option("--intake", options.intakes,
                 "intake's address; several (comma-separated, or the option again): the referrals "
                 "take turns")
      ->delimiter(',')
      ->required();
  app.add_option("--inbox", options.inbox, "the target organisation's inbox address")->required();
  app.add_option("--as", options.as, "the referring organisation")->required();
  app.add_option("--pki", options.pki,
                 "deploy/local/pki's folder: ca.pem and organisations/<org>.pem/.key")
      ->required();
  app.add_option("--target", options.target, "the organisation the referrals are routed to")
      ->required();
  app.add_option("--need", options.need, "the need code (routed to --target)")
      ->capture_default_str();
  app.add_option("--region", options.region, "the client's region")->required();
  app.add_option("--rate", options.rate, "referrals per second")->capture_default_str();
  app.add_option("--duration", options.duration_s, "seconds measured")->capture_default_str();
  app.add_option("--warmup", options.warmup_s, "seconds at the same rate before, not counted")
      ->capture_default_str();
  app.add_option("--drain", options.drain_s, "seconds to wait for the last arrivals")
      ->capture_default_str();
  app.add_option("--raw", options.raw_file, "write every end-to-end latency (ms) to this file");
  CLI11_PARSE(app, argc, argv);
  if (options.rate <= 0 || options.duration_s <= 0 || options.warmup_s < 0) {
    std::cerr << "e2e_latency: --rate and --duration must be positive\n";
    return 2;
  }
  schakel::bench::Run run(options);
  return run.Execute();
}
