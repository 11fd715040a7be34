// What StartServer sets up for every service.
#include "libs/service/server.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "schakel/v1/intake.grpc.pb.h"

namespace schakel::service {
namespace {

// Holds every SubmitReferral call until Release; counts the calls that reached it.
class HoldingIntake final : public v1::IntakeService::CallbackService {
 public:
  grpc::ServerUnaryReactor* SubmitReferral(grpc::CallbackServerContext* context,
                                           const v1::SubmitReferralRequest*,
                                           v1::SubmitReferralResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::MutexLock lock(&mu_);
    held_.push_back(reactor);  // wakes WaitForHeld as the lock is released
    return reactor;
  }
  // Waits (at most a minute) until `n` calls are held.
  bool WaitForHeld(std::size_t n) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Minutes(1));
  }
  std::size_t held() {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }
  // Answers every held call; returns how many.
  std::size_t Release() {
    std::vector<grpc::ServerUnaryReactor*> now;
    {
      absl::MutexLock lock(&mu_);
      now.swap(held_);
    }
    for (grpc::ServerUnaryReactor* r : now) r->Finish(grpc::Status::OK);
    return now.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<grpc::ServerUnaryReactor*> held_ ABSL_GUARDED_BY(mu_);
};

// One call in flight on the client side.
struct Call {
  grpc::ClientContext context;
  v1::SubmitReferralRequest request;
  v1::SubmitReferralResponse response;
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  grpc::Status status ABSL_GUARDED_BY(mu);
};

TEST(StartServerTest, AConnectionHasAtMostItsShareOfCallsOpenTheRestWaitOnTheClient) {
  HoldingIntake intake;
  absl::StatusOr<RunningServer> server =
      StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {&intake});
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<v1::IntakeService::Stub> stub = v1::IntakeService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server->port), grpc::InsecureChannelCredentials()));

  const std::size_t total = kMaxStreamsPerConnection + 8;
  std::vector<std::unique_ptr<Call>> calls;
  for (std::size_t i = 0; i < total; ++i) {
    auto call = std::make_unique<Call>();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
    Call* c = call.get();
    stub->async()->SubmitReferral(&c->context, &c->request, &c->response, [c](grpc::Status status) {
      absl::MutexLock lock(&c->mu);
      c->status = std::move(status);
      c->done = true;  // wakes the wait below as the lock is released
    });
    calls.push_back(std::move(call));
  }
  ASSERT_TRUE(intake.WaitForHeld(kMaxStreamsPerConnection));
  // While the server holds its share, one more call on the connection is not let in.
  grpc::ClientContext extra;
  extra.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  v1::SubmitReferralRequest request;
  v1::SubmitReferralResponse response;
  EXPECT_EQ(stub->SubmitReferral(&extra, request, &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(intake.held(), static_cast<std::size_t>(kMaxStreamsPerConnection));
  // As calls end the waiting ones come in; in the end every call is answered.
  std::size_t answered = 0;
  while (answered < total) {
    ASSERT_TRUE(intake.WaitForHeld(1));
    answered += intake.Release();
  }
  EXPECT_EQ(answered, total);
  for (auto& c : calls) {
    absl::MutexLock lock(&c->mu);
    ASSERT_TRUE(c->mu.AwaitWithTimeout(absl::Condition(&c->done), absl::Minutes(1)));
    EXPECT_TRUE(c->status.ok()) << c->status.error_message();
  }
  server->server->Shutdown();
}

}  // namespace
}  // namespace schakel::service
