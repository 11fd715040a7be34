#include "tools/schakelctl/context.h"

#include <grpcpp/create_channel.h>

#include <cstdlib>
#include <fstream>

#include "libs/kafka/client_config.h"
#include "libs/service/security.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {

void Context::AddFlags(CLI::App& app) {
  app.add_option("--pki", pki_,
                 "Folder of deploy/local/pki's certificates: ca.pem, organisations/<as>.pem, "
                 "operators/operator.pem")
      ->capture_default_str();
  app.add_option("--ca", tls_override_.ca,
                 "The network's certificate authority (instead of --pki)");
  app.add_option("--cert", tls_override_.cert, "Your client certificate (instead of --pki)");
  app.add_option("--key", tls_override_.key, "The key of --cert");
  app.add_option(
      "--kafka-config", kafka_config_,
      "librdkafka properties of your Kafka identity, e.g. <pki>/kafka/operator.properties "
      "(default: $SCHAKEL_KAFKA_CONFIG, else that file under --pki when it exists); "
      "topics create and access apply need the admin's");
}

absl::Status Context::UseKafkaIdentity() const {
  if (!kafka_config_.empty()) return kafka::SetClientConfigFile(kafka_config_);
  if (const char* env = std::getenv("SCHAKEL_KAFKA_CONFIG"); env != nullptr && *env) {
    return absl::OkStatus();
  }
  const std::string operator_config = pki_ + "/kafka/operator.properties";
  if (!std::ifstream(operator_config).good()) return absl::OkStatus();
  return kafka::SetClientConfigFile(operator_config);
}

OpsTls Context::TlsOf(const std::string& holder) const {
  OpsTls files = tls_override_;
  if (files.ca.empty()) files.ca = pki_ + "/ca.pem";
  if (files.cert.empty()) {
    const std::string base =
        holder == "operator" ? pki_ + "/operators/operator" : pki_ + "/organisations/" + holder;
    files.cert = base + ".pem";
    files.key = base + ".key";
  }
  return files;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Context::Channel(const std::string& address,
                                                                const std::string& holder) const {
  const OpsTls files = TlsOf(holder);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      service::ClientCredentials({.cert = files.cert, .key = files.key, .ca = files.ca});
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateChannel(address, *credentials);
}

absl::StatusOr<OpsAnswer> Context::PostToOps(const std::string& address, const std::string& path,
                                             const std::string& json) const {
  return PostJson(address, TlsOf("operator"), path, json, kDeadline);
}

void Context::Handle(CLI::App* command, std::function<int()> run) {
  handlers_.emplace_back(command, std::move(run));
}

int Context::Run() const {
  for (const auto& [command, run] : handlers_) {
    // `unroutable reassign` parses both: the deepest runs.
    if (command->parsed() && command->get_subcommands().empty()) return run();
  }
  return 0;
}

}  // namespace schakel::ctl
