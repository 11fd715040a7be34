// A request whose bytes do not parse as the method's message (a proto3 string field that is not
// valid UTF-8, a truncated or malformed message, groups nested beyond protobuf's recursion limit)
// never reaches a service: gRPC 1.51's callback API then answers UNIMPLEMENTED with no message,
// which tells the caller nothing. This interceptor answers INVALID_ARGUMENT instead, naming the
// field when protobuf said which string was not UTF-8 ("request: string field
// schakel.v1.NeedRequest.details is not valid UTF-8"). StartServer installs it in every service.
//
// Protobuf 3.21 refuses such a string while parsing (generated code for proto3 checks UTF-8
// strictly) and logs the field's full name; InstallProtobufLogHandler routes protobuf's log to
// spdlog and remembers that name for the thread that parsed, where gRPC runs this interceptor right
// after.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

namespace schakel::service {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MalformedRequestInterceptor();

// Sends protobuf's log lines to spdlog (once per process; later calls do nothing).
void InstallProtobufLogHandler();

// The full name of the last string field protobuf refused as not UTF-8 on this thread, and forgets
// it; empty when there was none (exposed for tests).
std::string TakeLastInvalidUtf8Field();

}  // namespace schakel::service
