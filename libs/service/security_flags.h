// The TLS and audit-key flags of a service's command line, apart from security.h so that code
// which only declares or passes them (the process shell's header) does not include gRPC.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace schakel::service {

struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
};

struct SecurityFlags {
  TlsFiles tls;
  std::string tokens;
};
// Adds --tls-cert, --tls-key, --tls-ca and --tokens to a service's command line (LoadServerSecurity
// requires the first three).
void AddSecurityFlags(CLI::App& app, SecurityFlags& flags);

// Adds --audit-signing-key: the Ed25519 private key (PEM) a service signs its audit chain's
// entries with (audit::LoadSigningKey reads it). Optional: without it the entries go unsigned.
void AddAuditSigningKeyFlag(CLI::App& app, std::string& path);

}  // namespace schakel::service
