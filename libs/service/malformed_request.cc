#include "libs/service/malformed_request.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string_view>

namespace schakel::service {
namespace {

thread_local std::string last_invalid_utf8_field;

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  // "String field 'schakel.v1.Client.client_code' contains invalid UTF-8 data when parsing ..."
  constexpr std::string_view kPrefix = "String field '";
  if (message.rfind(kPrefix, 0) == 0 && message.find("invalid UTF-8") != std::string::npos) {
    const std::size_t end = message.find('\'', kPrefix.size());
    if (end != std::string::npos) {
      last_invalid_utf8_field = message.substr(kPrefix.size(), end - kPrefix.size());
    }
  }
  // Protobuf's messages name types and fields, never values.
  const spdlog::level::level_enum to =
      level == google::protobuf::LOGLEVEL_INFO      ? spdlog::level::info
      : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                    : spdlog::level::err;
  spdlog::log(to, "protobuf ({}:{}): {}", file, line, message);
}

class Interceptor final : public grpc::experimental::Interceptor {
 public:
  explicit Interceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // gRPC deserialised the request just before, on this thread; no message: it did not parse.
      std::string field = TakeLastInvalidUtf8Field();
      if (methods->GetRecvMessage() == nullptr) {
        malformed_ = true;
        invalid_utf8_field_ = std::move(field);
      }
    }
    if (malformed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      methods->ModifySendStatus(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          invalid_utf8_field_.empty()
              ? "request: not a valid message for " + method_ +
                    " (malformed, or a string field that is not valid UTF-8)"
              : "request: string field " + invalid_utf8_field_ + " is not valid UTF-8"));
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  bool malformed_ = false;
  std::string invalid_utf8_field_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new Interceptor(info->method());
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MalformedRequestInterceptor() {
  return std::make_unique<Factory>();
}

void InstallProtobufLogHandler() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&ProtobufLog); });
}

std::string TakeLastInvalidUtf8Field() {
  std::string field;
  field.swap(last_invalid_utf8_field);
  return field;
}

}  // namespace schakel::service
