#include "libs/audit/writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topic_specs.h"

namespace schakel::audit {

absl::StatusOr<std::shared_ptr<const SigningKey>> LoadSigningKey(const std::string& path,
                                                                 const std::string& writer) {
  if (path.empty()) {
    spdlog::warn(
        "audit chain {}: no --audit-signing-key: its entries go unsigned, and `schakelctl audit "
        "verify` reports each of them",
        writer);
    return std::shared_ptr<const SigningKey>();
  }
  absl::StatusOr<SigningKey> key = SigningKey::ReadFile(path);
  if (!key.ok()) return key.status();
  spdlog::info("audit chain {}: signs with the key {}…", writer,
               Hex(key->public_key()).substr(0, 16));
  return std::make_shared<const SigningKey>(*std::move(key));
}

absl::StatusOr<ChainWriterOptions> ServiceChain(const std::string& bootstrap_servers,
                                                const std::string& writer,
                                                const std::string& signing_key_path,
                                                int topic_replication) {
  absl::StatusOr<std::shared_ptr<const SigningKey>> key = LoadSigningKey(signing_key_path, writer);
  if (!key.ok()) return key.status();
  ChainWriterOptions options;
  options.bootstrap_servers = bootstrap_servers;
  options.writer = writer;
  options.topic_replication = topic_replication;
  options.signing_key = *std::move(key);
  return options;
}

ChainWriter::ChainWriter(ChainWriterOptions options, Queue& queue)
    : options_(std::move(options)), queue_(queue), topic_(topology::AuditTopic(options_.writer)) {
  options_.batch_size = std::max(options_.batch_size, 1);
}

ChainWriter::~ChainWriter() { Stop(); }

void ChainWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ChainWriter::Notify() {
  absl::MutexLock lock(&mu_);
  notified_ = true;  // wakes Wait as the lock is released
}

void ChainWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool ChainWriter::Wait(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || notified_; };
  mu_.AwaitWithTimeout(absl::Condition(&woken), absl::FromChrono(timeout));
  notified_ = false;
  return stop_;
}

bool ChainWriter::Linger(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  mu_.AwaitWithTimeout(absl::Condition(&stopped), absl::FromChrono(timeout));
  return stop_;
}

void ChainWriter::Run() {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  std::minstd_rand jitter(std::random_device{}());
  bool stopping = false;
  int fences = 0;  // in a row
  while (!stopping) {
    absl::StatusOr<int> published = PublishOnce();
    if (!published.ok()) {
      spdlog::warn("audit chain {}: {}; retrying", options_.writer,
                   std::string(published.status().message()));
      // Fenced: another process with this writer id is publishing. Taking the chain back at once
      // would fence it in turn before it could commit (each side needs a renew and a read of the
      // head), so wait long enough for it to finish a batch, with jitter so that two writers fall
      // out of step.
      // Each fence in a row doubles the wait (up to 8 times), so that one of two contending
      // writers gets a window long enough to renew, read the head and commit.
      const bool fenced = published.status().code() == absl::StatusCode::kFailedPrecondition;
      fences = fenced ? std::min(fences + 1, 4) : 0;
      const std::chrono::milliseconds base =
          fenced ? options_.fenced_wait * (1 << (fences - 1)) : backoff;
      const auto wait = base / 2 + std::chrono::milliseconds(jitter() % (base.count() + 1));
      stopping = Wait(std::chrono::duration_cast<std::chrono::milliseconds>(wait));
      if (!fenced) backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = options_.initial_backoff;
    fences = 0;
    if (*published == options_.batch_size) {
      absl::MutexLock lock(&mu_);
      stopping = stop_;
      continue;
    }
    if (*published > 0 && options_.linger > std::chrono::milliseconds(0)) {
      stopping = Linger(options_.linger);
      if (stopping) break;
    }
    stopping = Wait(options_.idle_wait);
  }
  // Drain, bounded: what is left stays queued (in the database, or failed by AuditLog::Stop).
  const auto deadline = std::chrono::steady_clock::now() + options_.stop_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<int> published = PublishOnce();
    if (!published.ok()) {
      spdlog::warn("audit chain {}: at shutdown: {}", options_.writer,
                   std::string(published.status().message()));
      break;
    }
    if (*published < options_.batch_size) break;
  }
}

absl::Status ChainWriter::Sync() {
  Head head;
  std::vector<std::int64_t> committed;
  absl::Status read = kafka::ReadToEnd(
      options_.bootstrap_servers, topic_, {0}, options_.read_timeout,
      [&](const kafka::Record& record, bool tombstone) {
        if (tombstone || record.key != options_.writer) return;
        v1::AuditEntry entry;
        if (!entry.ParseFromString(record.value) || entry.writer() != options_.writer) return;
        if (entry.sequence() + 1 > head.next_sequence || head.next_sequence == 0) {
          head.next_sequence = entry.sequence() + 1;
          head.hash = entry.hash();
        }
        if (auto it = in_doubt_.find(entry.hash()); it != in_doubt_.end()) {
          committed.push_back(it->second);
        }
      },
      options_.extra);
  if (!read.ok()) return read;
  if (!in_doubt_.empty()) {
    spdlog::info("audit chain {}: of a batch of {} whose commit was in doubt, {} are in the chain",
                 options_.writer, in_doubt_.size(), committed.size());
    if (absl::Status s = queue_.Published(committed); !s.ok()) return s;
    in_doubt_.clear();
  }
  // Beyond our own entries whose commit was in doubt (found in the chain above), anything new
  // in the chain was written by another process with our writer id.
  const std::uint64_t ours = committed.size();
  if (synced_once_ && head.next_sequence > head_.next_sequence + ours) {
    spdlog::warn(
        "audit chain {}: {} entries were added by another process with this writer id; this one "
        "continues after them (give each process its own writer id)",
        options_.writer, head.next_sequence - head_.next_sequence - ours);
  }
  head_ = head;
  synced_ = true;
  synced_once_ = true;
  spdlog::info("audit chain {}: continues at sequence {}", options_.writer, head_.next_sequence);
  return absl::OkStatus();
}

absl::StatusOr<int> ChainWriter::PublishOnce() {
  if (!producer_) {
    kafka::TransactionalOptions txn;
    txn.bootstrap_servers = options_.bootstrap_servers;
    txn.client_id = "audit-" + options_.writer;
    txn.transactional_id = "schakel-audit-" + options_.writer;
    txn.extra = options_.extra;
    absl::StatusOr<std::unique_ptr<kafka::TransactionalProducer>> producer =
        kafka::TransactionalProducer::Create(txn, options_.kafka_timeout);
    if (!producer.ok()) return producer.status();
    producer_ = *std::move(producer);
    synced_ = false;
  }
  if (!topic_checked_) {
    // Made once, by whichever writer starts first (the router makes the network's own chains'
    // topics too). Not fatal: where an administrator makes the topics, the read below tells.
    absl::Status made = kafka::EnsureTopics(
        options_.bootstrap_servers, {topology::AuditTopicSpec(topic_, options_.topic_replication)},
        options_.kafka_timeout, options_.extra);
    if (made.code() == absl::StatusCode::kUnavailable) return made;  // again after the back-off
    if (!made.ok()) {
      spdlog::warn("audit chain {}: could not make sure topic {} exists: {}", options_.writer,
                   topic_, std::string(made.message()));
    }
    topic_checked_ = true;
  }
  if (!synced_) {
    if (absl::Status s = Sync(); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<Queued>> pending = queue_.Pending(options_.batch_size);
  if (!pending.ok()) return pending.status();
  if (pending->empty()) return 0;

  Head next = head_;
  std::map<std::string, std::int64_t> batch;
  std::vector<std::int64_t> ids;
  absl::Status status = producer_->Begin();
  for (std::size_t i = 0; status.ok() && i < pending->size(); ++i) {
    v1::AuditEntry& entry = (*pending)[i].entry;
    Link(entry, options_.writer, next);
    if (options_.signing_key) Sign(entry, *options_.signing_key);
    batch[entry.hash()] = (*pending)[i].id;
    ids.push_back((*pending)[i].id);
    status = producer_->Produce(topic_, options_.writer, entry.SerializeAsString());
  }
  if (status.ok()) status = producer_->Commit(options_.kafka_timeout);
  if (status.ok()) {
    head_ = next;
    published_.fetch_add(ids.size());
    if (absl::Status s = queue_.Published(ids); !s.ok()) {
      // In the chain, but still queued: found by their hashes at the next Sync, never linked twice.
      in_doubt_ = std::move(batch);
      synced_ = false;
      return s;
    }
    return static_cast<int>(ids.size());
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    // Fenced (another process took this writer id), or the commit's outcome is unknown: after the
    // wait (Run), a new producer fences everyone else, and the head is read again; entries of this
    // batch already in the chain are found there by their hash. Not at once: a new producer now
    // would fence the other writer in the middle of its batch, which would then do the same to this
    // one, for ever.
    in_doubt_ = std::move(batch);
    synced_ = false;
    producer_.reset();
    return absl::Status(status.code(),
                        absl::StrCat(status.message(),
                                     " (another process with this writer id, or a lost commit: "
                                     "reading the chain's head again)"));
  }
  if (absl::Status aborted = producer_->Abort(options_.kafka_timeout); !aborted.ok()) {
    synced_ = false;
    producer_.reset();
  }
  return status;
}

AuditLog::AuditLog(ChainWriterOptions options, std::size_t max_queued)
    : max_queued_(max_queued), writer_(std::move(options), *this) {}

AuditLog::~AuditLog() { Stop(); }

void AuditLog::Stop() {
  writer_.Stop();
  std::deque<Item> left;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    left.swap(items_);
  }
  if (!left.empty()) {
    spdlog::warn("audit chain {}: {} entries not published at shutdown", writer_.writer(),
                 left.size());
  }
  for (Item& item : left) {
    if (item.done) item.done(absl::UnavailableError("the audit log stopped before Kafka took it"));
  }
}

void AuditLog::Append(v1::AuditEntry entry, Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_ && items_.size() < max_queued_) {
      items_.push_back({next_id_++, std::move(entry), std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(absl::UnavailableError("the audit log cannot take more entries (Kafka unreachable?)"));
    return;
  }
  writer_.Notify();
}

absl::Status AuditLog::RecordAndWait(v1::AuditEntry entry, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = promise->get_future();
  Append(std::move(entry), [promise](absl::Status s) { promise->set_value(std::move(s)); });
  if (result.wait_for(timeout) != std::future_status::ready) {
    return absl::UnavailableError("the audit entry was not committed in time");
  }
  return result.get();
}

absl::StatusOr<std::vector<Queued>> AuditLog::Pending(int limit) {
  absl::MutexLock lock(&mu_);
  std::vector<Queued> out;
  for (const Item& item : items_) {
    if (static_cast<int>(out.size()) >= limit) break;
    out.push_back({item.id, item.entry});
  }
  return out;
}

absl::Status AuditLog::Published(const std::vector<std::int64_t>& ids) {
  std::vector<Done> dones;
  {
    absl::MutexLock lock(&mu_);
    for (std::int64_t id : ids) {
      auto it = std::find_if(items_.begin(), items_.end(),
                             [id](const Item& item) { return item.id == id; });
      if (it == items_.end()) continue;
      if (it->done) dones.push_back(std::move(it->done));
      items_.erase(it);
    }
  }
  for (Done& done : dones) done(absl::OkStatus());
  return absl::OkStatus();
}

}  // namespace schakel::audit
