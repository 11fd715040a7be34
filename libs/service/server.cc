#include "libs/service/server.h"

#include <grpcpp/ext/channelz_service_plugin.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <malloc.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/service/malformed_request.h"

namespace schakel::service {

absl::StatusOr<RunningServer> StartServer(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> credentials,
    const std::vector<grpc::Service*>& services,
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::channelz::experimental::InitChannelzService();  // grpc.channelz.v1: channels, calls,
                                                        // sockets
  InstallProtobufLogHandler();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  interceptors.insert(interceptors.begin(), MalformedRequestInterceptor());
  RunningServer running;
  builder.AddListeningPort(address, std::move(credentials), &running.port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  running.server = builder.BuildAndStart();
  if (!running.server || running.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return running;
}

void LimitMallocArenas() { mallopt(M_ARENA_MAX, 2); }

void SetServing(grpc::Server& server, bool serving) {
  if (grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService()) {
    health->SetServingStatus(serving);
  }
}

}  // namespace schakel::service
