// What a service answers to request bytes that are not a valid message: what protobuf 3.21 and
// gRPC 1.51 do by themselves, and what StartServer's interceptor makes of it.
#include "libs/service/malformed_request.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>

#include "libs/service/server.h"
#include "schakel/v1/intake.grpc.pb.h"

namespace schakel::service {
namespace {

constexpr char kSubmit[] = "/schakel.v1.IntakeService/SubmitReferral";

// Answers OK to every referral and counts the calls that reached it.
class CountingIntake final : public v1::IntakeService::CallbackService {
 public:
  grpc::ServerUnaryReactor* SubmitReferral(grpc::CallbackServerContext* context,
                                           const v1::SubmitReferralRequest*,
                                           v1::SubmitReferralResponse*) override {
    ++calls;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> calls{0};
};

// A SubmitReferralRequest whose first need's details are `details` (any bytes), written by hand so
// that no protobuf code checks them.
std::string RequestWithDetails(const std::string& details) {
  auto length_delimited = [](int field, const std::string& payload) {
    std::string out(1, static_cast<char>(field << 3 | 2));
    std::size_t n = payload.size();
    do {
      out += static_cast<char>((n & 0x7F) | (n >= 0x80 ? 0x80 : 0));
      n >>= 7;
    } while (n > 0);
    return out + payload;
  };
  const std::string need = length_delimited(1, "debt") + length_delimited(2, details);
  return length_delimited(1, length_delimited(2, need));  // referral { needs { ... } }
}

class MalformedRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<RunningServer> started =
        StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {&intake_});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started->server);
    stub_ = std::make_unique<grpc::GenericStub>(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(started->port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now()); }

  grpc::Status Call(const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::promise<grpc::Status> done;
    stub_->UnaryCall(&context, kSubmit, grpc::StubOptions(), &request, &response,
                     [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  CountingIntake intake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

TEST(ProtobufTest, Proto3StringWithInvalidUtf8FailsToParse) {
  // protobuf 3.21: the generated parser of a proto3 `string` refuses invalid UTF-8 (and logs the
  // field's name); it is not just a logged warning.
  v1::SubmitReferralRequest request;
  EXPECT_FALSE(request.ParseFromString(RequestWithDetails("\xff\xfe")));
  EXPECT_FALSE(request.ParseFromString(RequestWithDetails("\xc0\x80")));      // overlong NUL
  EXPECT_FALSE(request.ParseFromString(RequestWithDetails("\xed\xa0\x80")));  // a surrogate
  EXPECT_TRUE(request.ParseFromString(RequestWithDetails("caf\xc3\xa9")));
  // Serialising does not check: a C++ client can send such bytes (protobuf only logs).
  v1::NeedRequest need;
  need.set_details("\xff");
  EXPECT_EQ(need.SerializeAsString().size(), 3u);
}

TEST_F(MalformedRequestTest, ValidRequestReachesTheService) {
  EXPECT_TRUE(Call(RequestWithDetails("caf\xc3\xa9")).ok());
  EXPECT_EQ(intake_.calls, 1);
}

TEST_F(MalformedRequestTest, InvalidUtf8IsInvalidArgumentNamingTheField) {
  // Without the interceptor gRPC answers UNIMPLEMENTED with an empty message.
  grpc::Status s = Call(RequestWithDetails("Anna \xff de Vries"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "request: string field schakel.v1.NeedRequest.details is not valid UTF-8");
  EXPECT_EQ(intake_.calls, 0);
}

TEST_F(MalformedRequestTest, MalformedBytesAreInvalidArgument) {
  grpc::Status s = Call("\x0a\x05\x12\x10");  // a referral longer than the message
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "request: not a valid message for /schakel.v1.IntakeService/SubmitReferral "
            "(malformed, or a string field that is not valid UTF-8)");
  EXPECT_EQ(intake_.calls, 0);
}

TEST_F(MalformedRequestTest, GroupsNestedTooDeeplyAreInvalidArgument) {
  // Unknown groups nested 200 deep: beyond protobuf's recursion limit (100), so it does not parse.
  std::string bytes;
  for (int i = 0; i < 200; ++i) bytes += "\x7b";  // start group 15
  for (int i = 0; i < 200; ++i) bytes += "\x7c";  // end group 15
  grpc::Status s = Call(bytes);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(intake_.calls, 0);
}

TEST_F(MalformedRequestTest, OversizedRequestIsRefusedByGrpc) {
  grpc::Status s = Call(RequestWithDetails(std::string(kMaxRequestBytes, 'x')));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_EQ(intake_.calls, 0);
  // Just below the limit it is read (and would be refused by validation: details too long).
  EXPECT_TRUE(Call(RequestWithDetails(std::string(kMaxRequestBytes - 64, 'x'))).ok());
}

}  // namespace
}  // namespace schakel::service
