// Writing audit chains, each to its own topic schakel.audit.<writer>. A service records an entry
// with one call, e.g.
//
//   audit_log.Record(service::Identify(*context), "client.erased",
//                    {.client_pseudonym = pseudonym}, "EraseClient", done);
//
// (the caller from its credentials; ids only, never names, BSNs, client codes or typed text; `done`
// runs once the entry is durable: answer the call from there).
//
// Entries wait in a queue (in memory, or in a service's own database where an entry must survive a
// crash before the audited call is answered: the inbox, intake, the key service) and a ChainWriter
// links them into the writer's chain only when it publishes them: it learns the chain's head from
// its topic (which it makes when it is missing), so a restarted process, or one whose database is
// new, continues its chain where it ends instead of starting a fork. A writer reads no other chain.
// Each batch goes in one Kafka transaction under the transactional id "schakel-audit-<writer>": a
// second process with the same writer id fences the first, which then reads the head again (now
// including the other's entries) and links its own after them. So two processes with one writer id
// take turns on one chain; they never fork it, and an entry is never in the chain twice (a commit
// whose outcome was unknown is looked up by its hash after the renew). Each entry is signed with
// the writer's own key (ChainWriterOptions::signing_key) as it is linked.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/entry.h"
#include "libs/audit/signing.h"
#include "libs/kafka/producer.h"
#include "libs/topology/topics.h"

namespace schakel::kafka {
class TransactionalProducer;
}

namespace schakel::audit {

// Called once per entry: OK when it is durable (in Kafka, or in the service's database), an error
// when it could not be made durable.
using Done = std::function<void(absl::Status)>;

// The one call: what services use to record an entry.
class Recorder {
 public:
  virtual ~Recorder() = default;
  // Queues an entry made by NewEntry (not linked: the writer links it).
  virtual void Append(v1::AuditEntry entry, Done done) = 0;

  void Record(const v1::AuditActor& actor, std::string_view action, v1::AuditSubject subject,
              std::string_view reason, Done done = nullptr) {
    Append(NewEntry(actor, action, std::move(subject), reason), std::move(done));
  }
  void Record(const service::Caller& caller, std::string_view action, v1::AuditSubject subject,
              std::string_view reason, Done done = nullptr) {
    Record(ActorOf(caller), action, std::move(subject), reason, std::move(done));
  }
  void Record(const v1::AuditActor& actor, std::string_view action, const Ids& ids,
              std::string_view reason, Done done = nullptr) {
    Record(actor, action, SubjectOf(ids), reason, std::move(done));
  }
  void Record(const service::Caller& caller, std::string_view action, const Ids& ids,
              std::string_view reason, Done done = nullptr) {
    Record(ActorOf(caller), action, SubjectOf(ids), reason, std::move(done));
  }
};

// Where entries wait until they are in Kafka, oldest first.
struct Queued {
  std::int64_t id = 0;
  v1::AuditEntry entry;
};
class Queue {
 public:
  virtual ~Queue() = default;
  // At most `limit` waiting entries, oldest first (they stay until Published).
  virtual absl::StatusOr<std::vector<Queued>> Pending(int limit) = 0;
  // These entries are committed to the topic.
  virtual absl::Status Published(const std::vector<std::int64_t>& ids) = 0;
};

struct ChainWriterOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  // The chain's name and the records' key, e.g. "inbox-mjd"; its topic is
  // topology::AuditTopic(writer).
  std::string writer;
  // The replication factor the writer makes its topic with when it is missing (-1: the broker's
  // default). The router makes the topics of the network's own chains with the network's.
  int topic_replication = -1;
  kafka::Properties extra;  // e.g. TLS or SASL settings
  // The writer's own Ed25519 key (signing.h): every entry it links is signed with it. Without one
  // the entries go unsigned, and `schakelctl audit verify` reports each of them.
  std::shared_ptr<const SigningKey> signing_key{};
  int batch_size = 500;
  // With nothing to publish, look again after this long even without Notify.
  std::chrono::milliseconds idle_wait{200};
  // After a batch that was not full, wait this long (whatever is queued meanwhile) before the next:
  // entries that arrive at a steady rate then share a few transactions a second instead of having
  // one each. Only for a queue whose entries are durable before Kafka has them (the database
  // queues: kDurableQueueLinger); where a caller waits for the commit (AuditLog), zero.
  std::chrono::milliseconds linger{0};
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  // After being fenced by another process with the same writer id: about this long (with jitter,
  // doubling with each fence in a row) before taking the chain back, so that the other can finish a
  // batch.
  std::chrono::milliseconds fenced_wait{2000};
  // For each transaction step, and to start a producer.
  std::chrono::milliseconds kafka_timeout{10000};
  // To read the topic for the chain's head.
  std::chrono::milliseconds read_timeout{20000};
  // How long Stop() may spend publishing what is still queued.
  std::chrono::milliseconds stop_timeout{5000};
};

// The linger of a chain whose queue is in the service's own database (the inbox's, DatabaseLog):
// its callers were answered already, so a few transactions a second carry every entry.
inline constexpr std::chrono::milliseconds kDurableQueueLinger{200};

// The key of a service's --audit-signing-key flag: nullptr (with a warning in the log) when `path`
// is empty, an error when the file is no Ed25519 private key.
absl::StatusOr<std::shared_ptr<const SigningKey>> LoadSigningKey(const std::string& path,
                                                                 const std::string& writer);

// A service's own chain `writer` on Kafka at `bootstrap_servers`, signed with the key of its
// --audit-signing-key flag (`signing_key_path`, as LoadSigningKey), its topic made with
// `topic_replication` when missing; the rest as ChainWriterOptions' defaults.
absl::StatusOr<ChainWriterOptions> ServiceChain(const std::string& bootstrap_servers,
                                                const std::string& writer,
                                                const std::string& signing_key_path,
                                                int topic_replication = -1);

class ChainWriter {
 public:
  // `queue` must outlive the writer.
  ChainWriter(ChainWriterOptions options, Queue& queue);
  ~ChainWriter();
  ChainWriter(const ChainWriter&) = delete;
  ChainWriter& operator=(const ChainWriter&) = delete;

  // Starts the publishing thread.
  void Start();
  // Something was queued: publish soon.
  void Notify() ABSL_LOCKS_EXCLUDED(mu_);
  // Publishes what is queued for at most stop_timeout, then stops; what is left stays queued.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // One batch: links it after the chain's head and commits it; returns how many were published.
  // For Start's loop, and for tests.
  absl::StatusOr<int> PublishOnce();

  std::uint64_t published() const { return published_.load(); }
  const std::string& writer() const { return options_.writer; }
  const std::string& topic() const { return topic_; }

 private:
  // Reads the chain's head from the topic (after the producer fenced every earlier one).
  absl::Status Sync();
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool Wait(std::chrono::milliseconds timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits `timeout` unless stopped (a Notify meanwhile is kept for the next Wait); true: stopped.
  bool Linger(std::chrono::milliseconds timeout) ABSL_LOCKS_EXCLUDED(mu_);

  ChainWriterOptions options_;
  Queue& queue_;
  std::unique_ptr<kafka::TransactionalProducer> producer_;
  const std::string topic_;
  bool topic_checked_ = false;
  bool synced_ = false;
  bool synced_once_ = false;
  Head head_;
  // The batch whose commit outcome is unknown: entry hash -> queue id.
  std::map<std::string, std::int64_t> in_doubt_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  std::atomic<std::uint64_t> published_{0};
};

// A Recorder whose queue is in memory: `done` runs once the entry is committed to the topic (for
// ops, which answers only after that, and for command-line tools). A service that must answer
// sooner keeps its queue in a file of its own (DatabaseLog, database_log.h).
class AuditLog final : public Recorder, private Queue {
 public:
  explicit AuditLog(ChainWriterOptions options, std::size_t max_queued = 100000);
  ~AuditLog() override;
  void Start() { writer_.Start(); }
  // Publishes what is queued (bounded), then fails what is left (its Done gets UNAVAILABLE).
  void Stop();

  // UNAVAILABLE at once when `max_queued` entries wait already (Kafka is down).
  void Append(v1::AuditEntry entry, Done done) override;
  // Records and waits until the entry is committed (or `timeout`). For command-line tools.
  absl::Status RecordAndWait(v1::AuditEntry entry, std::chrono::milliseconds timeout);

 private:
  absl::StatusOr<std::vector<Queued>> Pending(int limit) override;
  absl::Status Published(const std::vector<std::int64_t>& ids) override;

  struct Item {
    std::int64_t id = 0;
    v1::AuditEntry entry;
    Done done;
  };
  const std::size_t max_queued_;
  absl::Mutex mu_;
  std::int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  ChainWriter writer_;  // last: its thread uses the queue above
};

}  // namespace schakel::audit
