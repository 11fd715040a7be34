// schakelctl's shared client set-up and its table of commands. The common flags (--pki, --ca,
// --cert, --key, --kafka-config) say who schakelctl is; from them every command group gets its
// gRPC channels, its calls to the ops service and its Kafka identity. Each command group registers
// its subcommands and, per subcommand, what it runs (Handle); main runs the one given (Run).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/schakelctl/ops_client.h"

namespace grpc {
class Channel;
}

namespace schakel::ctl {

class Context {
 public:
  // Adds the common flags to schakelctl's own command line.
  void AddFlags(CLI::App& app);

  // The folder of deploy/local/pki's files (--pki).
  const std::string& pki() const { return pki_; }

  // Makes every Kafka client of this run use the identity the flags name: --kafka-config, else
  // $SCHAKEL_KAFKA_CONFIG (librdkafka's client config reads it), else <pki>/kafka/
  // operator.properties when it exists. The error names the file that cannot be used.
  absl::Status UseKafkaIdentity() const;

  // A TLS channel to the service at `address`, as `holder`: an organisation id (its certificate
  // under --pki) or "operator"; --ca, --cert and --key take the place of --pki's files.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(const std::string& address,
                                                         const std::string& holder) const;

  // POSTs `json` to the ops service's API at `address` as the operator the certificate names
  // (operators write no Kafka topic: what they do goes through ops).
  absl::StatusOr<OpsAnswer> PostToOps(const std::string& address, const std::string& path,
                                      const std::string& json) const;

  // `run` is what `command` does when it is the subcommand given (the deepest parsed); its value
  // is schakelctl's exit status.
  void Handle(CLI::App* command, std::function<int()> run);
  // After parsing: runs the given subcommand's handler; its exit status (0 when it has none).
  int Run() const;

 private:
  // The certificate authority, certificate and key `holder` calls with.
  OpsTls TlsOf(const std::string& holder) const;

  // TLS: every service verifies who calls. Locally deploy/local/up made the certificates in
  // .state/pki; --as picks the organisation's. A partner elsewhere names its own files.
  std::string pki_ = ".state/pki";
  OpsTls tls_override_;
  // Kafka: who schakelctl is to the broker (the broker's ACLs decide what it may do).
  std::string kafka_config_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> handlers_;
};

}  // namespace schakel::ctl
