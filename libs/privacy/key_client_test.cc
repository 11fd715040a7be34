#include "libs/privacy/key_client.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace schakel::privacy {
namespace {

// A key service that answers no AssignmentKey call until `together` calls are in flight at once,
// then all of them: a client asking one at a time never gets an answer (its calls run into their
// deadline). The answer depends on the assignment: "a-erased" FAILED_PRECONDITION, "a-other"
// PERMISSION_DENIED, any other a key named after the assignment.
class TogetherKeyService final : public v1::KeyService::CallbackService {
 public:
  explicit TogetherKeyService(std::size_t together) : together_(together) {}

  grpc::ServerUnaryReactor* AssignmentKey(grpc::CallbackServerContext* context,
                                          const v1::AssignmentKeyRequest* request,
                                          v1::DataKey* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::vector<Held> answer_now;
    {
      absl::MutexLock lock(&mu_);
      held_.push_back({reactor, request, response});
      if (held_.size() < together_) return reactor;
      answer_now.swap(held_);
    }
    for (const Held& h : answer_now) {
      if (h.request->assignment_id() == "a-erased") {
        h.reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "erased"));
      } else if (h.request->assignment_id() == "a-other") {
        h.reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not yours"));
      } else {
        h.response->set_key_id(h.request->key_id());
        h.response->set_key("key of " + h.request->assignment_id());
        h.reactor->Finish(grpc::Status::OK);
      }
    }
    return reactor;
  }

  // At once: "r-erased" FAILED_PRECONDITION, "r-other" PERMISSION_DENIED, any other a key named
  // after the referral.
  grpc::ServerUnaryReactor* ReferralKey(grpc::CallbackServerContext* context,
                                        const v1::ReferralKeyRequest* request,
                                        v1::DataKey* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (request->referral_id() == "r-erased") {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "erased"));
    } else if (request->referral_id() == "r-other") {
      reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not yours"));
    } else {
      response->set_key_id(request->key_id());
      response->set_key("key of " + request->referral_id());
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  // Answers what is still held (UNAVAILABLE): a server shuts down only once every call is finished.
  void Release() {
    std::vector<Held> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (const Held& h : held)
      h.reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "bye"));
  }

 private:
  struct Held {
    grpc::ServerUnaryReactor* reactor;
    const v1::AssignmentKeyRequest* request;
    v1::DataKey* response;
  };
  std::size_t together_;
  absl::Mutex mu_;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
};

// The service on a port of loopback, for as long as the object lives.
class Running {
 public:
  explicit Running(std::size_t together) : service_(together) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~Running() {
    service_.Release();
    if (server_ != nullptr) server_->Shutdown();
  }
  bool started() const { return server_ != nullptr; }
  KeyClient Client(std::chrono::milliseconds timeout) const {
    return KeyClient(grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                         grpc::InsecureChannelCredentials()),
                     timeout);
  }

 private:
  TogetherKeyService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST(KeyClientTest, AsksForABatchOfKeysAllAtOnceAndAnswersEachInOrder) {
  Running running(4);
  ASSERT_TRUE(running.started());
  KeyClient client = running.Client(std::chrono::seconds(10));

  const std::vector<AssignmentKeyAsk> asks = {{.assignment_id = "a-1", .key_id = "k-1"},
                                              {.assignment_id = "a-erased", .key_id = "k-2"},
                                              {.assignment_id = "a-2", .key_id = "k-1"},
                                              {.assignment_id = "a-other", .key_id = "k-3"}};
  std::vector<absl::StatusOr<v1::DataKey>> keys = client.AssignmentKeys(asks);

  ASSERT_EQ(keys.size(), 4u);
  ASSERT_TRUE(keys[0].ok()) << keys[0].status();
  EXPECT_EQ(keys[0]->key(), "key of a-1");
  EXPECT_EQ(keys[0]->key_id(), "k-1");
  EXPECT_EQ(keys[1].status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(keys[2].ok()) << keys[2].status();
  EXPECT_EQ(keys[2]->key(), "key of a-2");
  EXPECT_EQ(keys[3].status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(client.AssignmentKeys({}).empty());
}

TEST(KeyClientTest, AKeyServiceThatDoesNotAnswerIsUnavailableForEveryAsk) {
  Running running(3);  // two asks never make three: no answer
  ASSERT_TRUE(running.started());
  KeyClient client = running.Client(std::chrono::milliseconds(300));
  const std::vector<AssignmentKeyAsk> asks = {{.assignment_id = "a-1", .key_id = "k-1"},
                                              {.assignment_id = "a-2", .key_id = "k-1"}};
  std::vector<absl::StatusOr<v1::DataKey>> keys = client.AssignmentKeys(asks);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(keys[1].status().code(), absl::StatusCode::kUnavailable);
}

// Asks for one referral's key and waits for `done`.
absl::StatusOr<v1::DataKey> AskReferralKey(KeyClient& client, const std::string& referral_id,
                                           std::chrono::milliseconds timeout) {
  // Written by the callback before it notifies; read here only after the notification.
  std::optional<absl::StatusOr<v1::DataKey>> answer;
  absl::Notification answered;
  client.ReferralKey(referral_id, "k-1", std::chrono::system_clock::now() + timeout,
                     [&](absl::StatusOr<v1::DataKey> key) {
                       answer = std::move(key);
                       answered.Notify();
                     });
  answered.WaitForNotification();
  return *std::move(answer);
}

TEST(KeyClientTest, AsksForAReferralsKeyAndSaysWhyItWasRefused) {
  Running running(1);
  ASSERT_TRUE(running.started());
  KeyClient client = running.Client(std::chrono::seconds(10));
  absl::StatusOr<v1::DataKey> key = AskReferralKey(client, "r-1", std::chrono::seconds(10));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->key_id(), "k-1");
  EXPECT_EQ(key->key(), "key of r-1");
  EXPECT_EQ(AskReferralKey(client, "r-erased", std::chrono::seconds(10)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AskReferralKey(client, "r-other", std::chrono::seconds(10)).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(KeyClientTest, AReferralKeyFromAKeyServiceThatIsNotThereIsUnavailable) {
  // Port 1 of loopback: nothing listens there.
  KeyClient client(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
  EXPECT_EQ(AskReferralKey(client, "r-1", std::chrono::milliseconds(300)).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace schakel::privacy
