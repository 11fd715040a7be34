// Builds and starts a gRPC server the way every Schakel service needs it: TLS, the given services
// plus the standard health checking service, server reflection (v1alpha, for grpcurl) and channelz.
#pragma once

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace grpc {
class Service;
}

namespace schakel::service {

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the port actually bound (useful with ":0")
};

// The largest request a service reads: a bigger one is refused by gRPC itself with
// RESOURCE_EXHAUSTED ("received message larger than max") before any service code runs. (gRPC's
// default is 4 MiB; the largest valid referral is far below this, see libs/referral/validation.h.)
inline constexpr int kMaxRequestBytes = 1024 * 1024;

// The calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; gRPC's
// default has no bound). A client with more waits on its own side until one ends: each call open
// here holds memory (about 9 KiB of gRPC's own before any service code runs), and a flood over one
// connection would otherwise grow a service without bound. Above the 500 keys an inbox asks for at
// once (services/inbox).
inline constexpr int kMaxStreamsPerConnection = 512;

// Fewer malloc arenas (glibc makes up to eight per core, one for each thread that contends): memory
// freed by gRPC's and librdkafka's many threads then returns to a few shared arenas instead of
// staying spread over many. Under the benchmark's load this lowered each service's peak RSS by
// 10-20%. Call in main before servers and Kafka clients start their threads.
void LimitMallocArenas();

// address: "127.0.0.1:50051", or "127.0.0.1:0" for any free port. `credentials`: TLS from
// LoadServerSecurity (libs/service/security.h) in every service; plaintext
// (grpc::InsecureServerCredentials) only for a test's in-process server. Every server answers a
// request that does not parse with INVALID_ARGUMENT (libs/service/malformed_request.h).
// `interceptors`: e.g. the metrics' (metrics::Metrics::GrpcInterceptor).
absl::StatusOr<RunningServer> StartServer(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> credentials,
    const std::vector<grpc::Service*>& services,
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors = {});

// Marks the whole server (and each named service) SERVING or NOT_SERVING for health checks.
void SetServing(grpc::Server& server, bool serving);

}  // namespace schakel::service
