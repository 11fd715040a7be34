#include "services/intake/referral_view.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/referral/ids.h"
#include "libs/referral/lifecycle.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"

namespace schakel::intake {
namespace {

using google::protobuf::util::TimeUtil;

v1::NeedStatus* FindNeed(v1::ReferralStatus* referral, const std::string& need_code) {
  for (v1::NeedStatus& need : *referral->mutable_needs()) {
    if (need.need_code() == need_code) return &need;
  }
  v1::NeedStatus* need = referral->add_needs();
  need->set_need_code(need_code);
  return need;
}

void UpdateDone(v1::ReferralStatus* referral) {
  bool done = referral->needs_size() > 0;
  for (const v1::NeedStatus& need : referral->needs()) {
    if (!need.unroutable() && need.linked_to().empty() && !referral::IsFinal(need.status())) {
      done = false;
    }
  }
  referral->set_done(done);
}

bool Before(const v1::ReferralEvent& a, const v1::ReferralEvent& b) {
  if (a.at() != b.at()) return a.at() < b.at();
  if (a.assignment_id() != b.assignment_id()) {
    return referral::ChainStepOf(a.assignment_id()) < referral::ChainStepOf(b.assignment_id());
  }
  return a.version() < b.version();
}

}  // namespace

std::string ReferralIdOf(const std::string& assignment_id) {
  if (!assignment_id.starts_with("a-")) return "";
  const std::size_t dash = assignment_id.rfind('-');
  if (dash <= 2) return "";
  return absl::StrCat("r-", assignment_id.substr(2, dash - 2));
}

bool ApplySubmitted(const v1::ReferralSubmitted& event, v1::ReferralStatus* referral) {
  const bool fresh = referral->referral_id().empty() || !referral->has_submitted_at();
  referral->set_referral_id(event.meta().referral_id());
  *referral->mutable_submitted_at() = event.meta().occurred_at();
  for (int i = 0; i < event.needs_size(); ++i) {
    v1::NeedStatus* need = FindNeed(referral, event.needs(i).code());
    need->set_need_index(static_cast<std::uint32_t>(i));
    for (const v1::LinkedNeed& linked : event.linked()) {
      if (linked.need_index() == static_cast<std::uint32_t>(i)) {
        need->set_linked_to(linked.assignment_id());
      }
    }
  }
  // Keep the needs in the order of the referral.
  std::sort(referral->mutable_needs()->begin(), referral->mutable_needs()->end(),
            [](const v1::NeedStatus& a, const v1::NeedStatus& b) {
              return a.need_index() < b.need_index();
            });
  UpdateDone(referral);
  return fresh;
}

bool ApplyStatus(const v1::AssignmentStatusChanged& event, v1::ReferralStatus* referral) {
  referral->set_referral_id(event.meta().referral_id());
  v1::NeedStatus* need = FindNeed(referral, event.need_code());
  for (const v1::ReferralEvent& seen : need->history()) {
    if (seen.assignment_id() == event.meta().assignment_id() && seen.version() == event.version()) {
      return false;  // redelivered
    }
  }
  v1::ReferralEvent* entry = need->add_history();
  *entry->mutable_at() = event.meta().occurred_at();
  entry->set_assignment_id(event.meta().assignment_id());
  entry->set_organisation(event.organisation());
  entry->set_from_status(event.from_status());
  entry->set_to_status(event.to_status());
  entry->set_reason(event.reason());
  entry->set_by(event.by());
  entry->set_version(event.version());
  entry->set_outcome(event.outcome());
  // What a person typed stays sealed here; it is opened only to answer the referrer.
  if (event.has_sealed_reason()) *entry->mutable_sealed_reason() = event.sealed_reason();
  if (event.has_sealed_outcome()) *entry->mutable_sealed_outcome() = event.sealed_outcome();
  std::sort(need->mutable_history()->begin(), need->mutable_history()->end(), Before);

  // The need's state is that of the newest assignment in its chain, at its highest version.
  const v1::ReferralEvent* current = nullptr;
  for (const v1::ReferralEvent& e : need->history()) {
    if (current == nullptr ||
        referral::ChainStepOf(e.assignment_id()) >
            referral::ChainStepOf(current->assignment_id()) ||
        (e.assignment_id() == current->assignment_id() && e.version() > current->version())) {
      current = &e;
    }
  }
  // The router publishes an unroutable step with the status change that led to it, on another
  // topic, so the two can arrive in either order: an unroutable step newer than every status
  // change still decides the need's state.
  if (need->unroutable() && referral::ChainStepOf(need->assignment_id()) >
                                referral::ChainStepOf(current->assignment_id())) {
    UpdateDone(referral);
    return true;
  }
  need->set_assignment_id(current->assignment_id());
  need->set_organisation(current->organisation());
  need->set_status(current->to_status());
  need->set_outcome(current->outcome());
  need->set_unroutable(false);
  UpdateDone(referral);
  return true;
}

bool ApplyUnroutable(const v1::ReferralUnroutable& event, v1::ReferralStatus* referral) {
  referral->set_referral_id(event.meta().referral_id());
  v1::NeedStatus* need = FindNeed(referral, event.need_code());
  if (need->unroutable() && need->assignment_id() == event.meta().assignment_id()) return false;
  // An unroutable step newer than what the need has (or the first word about it) decides its state.
  if (!need->assignment_id().empty() && referral::ChainStepOf(event.meta().assignment_id()) <
                                            referral::ChainStepOf(need->assignment_id())) {
    return false;
  }
  need->set_need_index(event.need_index());
  need->set_assignment_id(event.meta().assignment_id());
  need->set_organisation("");
  need->set_unroutable(true);
  need->set_status(v1::ASSIGNMENT_STATUS_UNSPECIFIED);
  UpdateDone(referral);
  return true;
}

namespace {

constexpr char kEntryColumns[] =
    "referring_organisation, body, client_pseudonym, request_digest, client_key_id";

// What a pending Statement's row holds from kEntryColumns, starting at `first`.
template <typename Entry>
Entry EntryAt(const sqlite::Statement& row, int first) {
  Entry entry;
  entry.referring_organisation = row.Text(first);
  entry.body = row.Blob(first + 1);
  entry.client_pseudonym = row.Text(first + 2);
  entry.request_digest = row.Text(first + 3);
  entry.client_key_id = row.Text(first + 4);
  return entry;
}

// The referral `referral_id` as the file holds it (`load`: the kept statement that reads it);
// nullopt when there is none.
template <typename Entry>
absl::StatusOr<std::optional<Entry>> LoadEntry(sqlite::Statement& load,
                                               const std::string& referral_id) {
  sqlite::ScopedReset reset(load);
  load.BindText(1, referral_id);
  absl::StatusOr<bool> found = load.Step();
  if (!found.ok()) return found.status();
  if (!*found) return std::optional<Entry>();
  return std::optional<Entry>(EntryAt<Entry>(load, 0));
}

sqlite::Options ViewOptions(int busy_timeout_ms) {
  // Only intake opens the file; every failure is UNAVAILABLE: the view's consumer waits and tries
  // again, a reader answers UNAVAILABLE.
  return {.name = "referral view",
          .errors = sqlite::Errors::kAllUnavailable,
          .require_wal = false,
          .secure_delete = false,
          .busy_timeout_ms = busy_timeout_ms};
}

// Brings a file made by an older intake up to date: the columns and indexes that lookups need.
// (An error for a column that is there already is expected and ignored.)
absl::Status Prepare(sqlite::Database& db) {
  if (absl::Status s = db.Exec(
          "CREATE TABLE IF NOT EXISTS referrals (referral_id TEXT PRIMARY KEY NOT NULL,"
          " referring_organisation TEXT NOT NULL, body BLOB NOT NULL,"
          " client_pseudonym TEXT NOT NULL DEFAULT '', request_digest TEXT NOT NULL DEFAULT '',"
          " client_key_id TEXT NOT NULL DEFAULT '', submitted_seconds INTEGER NOT NULL DEFAULT 0,"
          " submitted_nanos INTEGER NOT NULL DEFAULT 0);",
          "schema");
      !s.ok()) {
    return s;
  }
  for (const char* column : {"client_pseudonym", "request_digest", "client_key_id"}) {
    (void)db.Exec(
        absl::StrCat("ALTER TABLE referrals ADD COLUMN ", column, " TEXT NOT NULL DEFAULT ''")
            .c_str(),
        "schema");
  }
  for (const char* column : {"submitted_seconds", "submitted_nanos"}) {
    (void)db.Exec(
        absl::StrCat("ALTER TABLE referrals ADD COLUMN ", column, " INTEGER NOT NULL DEFAULT 0")
            .c_str(),
        "schema");
  }
  // A file from before the time columns: each referral's time from its body, once.
  absl::StatusOr<sqlite::Statement> untimed = db.Prepare(
      "SELECT referral_id, body FROM referrals WHERE submitted_seconds = 0 AND"
      " submitted_nanos = 0",
      "find referrals without their time");
  if (!untimed.ok()) return untimed.status();
  std::vector<std::tuple<std::string, std::int64_t, std::int32_t>> times;
  absl::StatusOr<bool> row;
  while ((row = untimed->Step()).ok() && *row) {
    v1::ReferralStatus status;
    status.ParseFromString(untimed->Blob(1));
    if (status.submitted_at().seconds() != 0 || status.submitted_at().nanos() != 0) {
      times.emplace_back(untimed->Text(0), status.submitted_at().seconds(),
                         status.submitted_at().nanos());
    }
  }
  if (!row.ok()) return row.status();
  if (absl::Status s = sqlite::InTransaction(
          db,
          [&](sqlite::Transaction& tx) -> absl::Status {
            absl::StatusOr<sqlite::Statement> set = tx.db().Prepare(
                "UPDATE referrals SET submitted_seconds = ?, submitted_nanos = ? WHERE"
                " referral_id = ?",
                "store a referral's time");
            if (!set.ok()) return set.status();
            for (const auto& [id, seconds, nanos] : times) {
              set->BindInt64(1, seconds).BindInt64(2, nanos).BindText(3, id);
              if (absl::Status r = tx.Run(*set); !r.ok()) return r;
            }
            return absl::OkStatus();
          });
      !s.ok()) {
    return s;
  }
  // An organisation's referrals newest first (List), a client's referrals (FindOpen).
  return db.Exec(
      "CREATE INDEX IF NOT EXISTS referrals_by_organisation ON referrals (referring_organisation,"
      " submitted_seconds, submitted_nanos, referral_id);"
      "CREATE INDEX IF NOT EXISTS referrals_by_client ON referrals (client_pseudonym);",
      "schema");
}

}  // namespace

absl::StatusOr<ReferralView::Connection> ReferralView::Connection::Open(sqlite::Database db) {
  Connection c{std::move(db), {}, {}, {}, {}, {}, {}};
  absl::Status kept = c.db.KeepAll({
      {&c.load, absl::StrCat("SELECT ", kEntryColumns, " FROM referrals WHERE referral_id = ?"),
       "read a referral"},
      {&c.save,
       "INSERT INTO referrals (referral_id, referring_organisation, body, client_pseudonym,"
       " request_digest, client_key_id, submitted_seconds, submitted_nanos)"
       " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (referral_id) DO UPDATE SET"
       " referring_organisation = excluded.referring_organisation, body = excluded.body,"
       " client_pseudonym = excluded.client_pseudonym, request_digest = excluded.request_digest,"
       " client_key_id = excluded.client_key_id, submitted_seconds = excluded.submitted_seconds,"
       " submitted_nanos = excluded.submitted_nanos",
       "store a referral"},
      {&c.by_client, "SELECT body FROM referrals WHERE client_pseudonym = ? ORDER BY rowid",
       "find a client's referrals"},
      {&c.page_start,
       "SELECT submitted_seconds, submitted_nanos FROM referrals WHERE referral_id = ? AND"
       " referring_organisation = ?",
       "find a page's start"},
      {&c.first_page,
       "SELECT referral_id, body FROM referrals WHERE referring_organisation = ?1"
       " ORDER BY submitted_seconds DESC, submitted_nanos DESC, referral_id DESC LIMIT ?5",
       "list an organisation's referrals"},
      {&c.next_page,
       "SELECT referral_id, body FROM referrals WHERE referring_organisation = ?1"
       " AND (submitted_seconds < ?2 OR (submitted_seconds = ?2 AND"
       " (submitted_nanos < ?3 OR (submitted_nanos = ?3 AND referral_id < ?4))))"
       " ORDER BY submitted_seconds DESC, submitted_nanos DESC, referral_id DESC LIMIT ?5",
       "list an organisation's referrals"},
  });
  if (!kept.ok()) return kept;
  return c;
}

ReferralView::ReferralView(Connection writer, std::optional<Connection> reader)
    : writer_(std::move(writer)), reader_(std::move(reader)) {}

absl::StatusOr<std::unique_ptr<ReferralView>> ReferralView::Open(const std::string& path) {
  absl::StatusOr<sqlite::Database> writer = sqlite::Database::Open(path, ViewOptions(0));
  if (!writer.ok()) return writer.status();
  if (absl::Status s = Prepare(*writer); !s.ok()) return s;
  absl::StatusOr<Connection> writing = Connection::Open(*std::move(writer));
  if (!writing.ok()) return writing.status();
  std::optional<Connection> reader;
  if (path != ":memory:") {
    // A reader waits at most this long for the writer (only ever while the log is checkpointed).
    absl::StatusOr<sqlite::Database> opened = sqlite::Database::Open(path, ViewOptions(2000));
    if (!opened.ok()) return opened.status();
    absl::StatusOr<Connection> reading = Connection::Open(*std::move(opened));
    if (!reading.ok()) return reading.status();
    reader = *std::move(reading);
  }
  return std::unique_ptr<ReferralView>(new ReferralView(*std::move(writing), std::move(reader)));
}

ReferralView::~ReferralView() = default;

v1::ReferralStatus ReferralView::Entry::Status() const {
  v1::ReferralStatus status;
  // Only ever written by SerializeAsString (or loaded from what it wrote).
  status.ParseFromString(body);
  return status;
}

template <typename Read>
auto ReferralView::Reading(Read read) {
  if (absl::MutexLock lock(&read_mu_); reader_.has_value()) return read(*reader_);
  absl::MutexLock lock(&apply_mu_);
  return read(writer_);
}

absl::Status ReferralView::Fold(Connection& writer, sqlite::Transaction& tx,
                                const std::string& topic, const std::string& value,
                                std::vector<Changed>* changed) {
  std::string referral_id;
  std::string referring_organisation;
  std::function<bool(v1::ReferralStatus*)> apply;
  v1::ReferralSubmitted submitted;
  v1::AssignmentStatusChanged status;
  v1::ReferralUnroutable unroutable;
  if (topic == topology::kSubmittedTopic && submitted.ParseFromString(value)) {
    referral_id = submitted.meta().referral_id();
    referring_organisation = submitted.referring_organisation();
    apply = [&](v1::ReferralStatus* r) { return ApplySubmitted(submitted, r); };
  } else if (topic == topology::kStatusTopic && status.ParseFromString(value)) {
    referral_id = status.meta().referral_id();
    referring_organisation = status.referring_organisation();
    apply = [&](v1::ReferralStatus* r) { return ApplyStatus(status, r); };
  } else if (topic == topology::kUnroutableTopic && unroutable.ParseFromString(value)) {
    referral_id = unroutable.meta().referral_id();
    referring_organisation = unroutable.referring_organisation();
    apply = [&](v1::ReferralStatus* r) { return ApplyUnroutable(unroutable, r); };
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("not an event the referral view knows (", topic, ")"));
  }
  if (referral_id.empty() || referring_organisation.empty()) {
    return absl::InvalidArgumentError("event without referral id or referring organisation");
  }
  absl::StatusOr<std::optional<Entry>> stored = LoadEntry<Entry>(writer.load, referral_id);
  if (!stored.ok()) return stored.status();
  Entry entry = stored->value_or(Entry{});
  // Who referred it is what the submission says (intake alone writes that topic). A later fact
  // naming another referrer changes nothing: the referral stays its referrer's.
  if (entry.referring_organisation.empty() || topic == topology::kSubmittedTopic) {
    entry.referring_organisation = referring_organisation;
  } else if (entry.referring_organisation != referring_organisation) {
    return absl::InvalidArgumentError(
        absl::StrCat("referring_organisation: not the referral's referrer (", topic, ")"));
  }
  bool store = false;
  if (!submitted.client_pseudonym().empty() && entry.client_pseudonym.empty()) {
    entry.client_pseudonym = submitted.client_pseudonym();
    store = true;
  }
  if (!submitted.request_digest().empty() && entry.request_digest != submitted.request_digest()) {
    entry.request_digest = submitted.request_digest();
    store = true;
  }
  if (!submitted.sealed_client().key_id().empty() &&
      entry.client_key_id != submitted.sealed_client().key_id()) {
    entry.client_key_id = submitted.sealed_client().key_id();
    store = true;
  }
  v1::ReferralStatus current = entry.Status();
  const bool folded = apply(&current);
  if (folded) entry.body = current.SerializeAsString();
  if (!folded && !store) return absl::OkStatus();
  sqlite::Statement& save = writer.save;
  save.BindText(1, referral_id)
      .BindText(2, entry.referring_organisation)
      .BindBlob(3, entry.body)
      .BindText(4, entry.client_pseudonym)
      .BindText(5, entry.request_digest)
      .BindText(6, entry.client_key_id)
      .BindInt64(7, current.submitted_at().seconds())
      .BindInt64(8, current.submitted_at().nanos());
  if (absl::Status saved = tx.Run(save); !saved.ok()) return saved;
  if (folded) changed->push_back({entry.referring_organisation, std::move(current)});
  return absl::OkStatus();
}

absl::Status ReferralView::ApplyRecord(const std::string& topic, const std::string& value) {
  std::vector<absl::Status> results;
  if (absl::Status stored = ApplyRecords({RecordRef{topic, value}}, &results); !stored.ok()) {
    return stored;
  }
  return results.front();
}

absl::Status ReferralView::ApplyRecords(const std::vector<RecordRef>& records,
                                        std::vector<absl::Status>* results) {
  std::vector<Changed> changed;
  std::vector<absl::Status> outcomes;
  {
    absl::MutexLock apply_lock(&apply_mu_);
    // The lambda runs under apply_mu_, which clang's analysis cannot see into.
    Connection* writer = &writer_;
    absl::Status stored =
        sqlite::InTransaction(writer->db, [&](sqlite::Transaction& tx) -> absl::Status {
          for (const RecordRef& record : records) {
            absl::Status folded = Fold(*writer, tx, record.topic, record.value, &changed);
            // A record the view cannot use is that record's answer; the store failing is the
            // batch's.
            if (!folded.ok() && !absl::IsInvalidArgument(folded)) return folded;
            outcomes.push_back(std::move(folded));
          }
          return absl::OkStatus();
        });
    if (!stored.ok()) return stored;
  }
  for (absl::Status& outcome : outcomes) results->push_back(std::move(outcome));
  std::vector<Listener> listeners;
  {
    absl::MutexLock lock(&listeners_mu_);
    for (const auto& [handle, listener] : listeners_) listeners.push_back(listener);
  }
  for (const Changed& c : changed) {
    for (const Listener& listener : listeners) listener(c.referring_organisation, c.status);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ReferralStatus> ReferralView::Get(const std::string& referring_organisation,
                                                     const std::string& referral_id) {
  absl::StatusOr<std::optional<Entry>> entry =
      Reading([&](Connection& c) { return LoadEntry<Entry>(c.load, referral_id); });
  if (!entry.ok()) return entry.status();
  if (!*entry || (*entry)->referring_organisation != referring_organisation) {
    return absl::NotFoundError("referral not found");
  }
  return (*entry)->Status();
}

std::optional<ReferralView::Submitted> ReferralView::FindSubmitted(
    const std::string& referring_organisation, const std::string& referral_id) {
  absl::StatusOr<std::optional<Entry>> entry =
      Reading([&](Connection& c) { return LoadEntry<Entry>(c.load, referral_id); });
  if (!entry.ok() || !*entry || (*entry)->referring_organisation != referring_organisation) {
    return std::nullopt;
  }
  return Submitted{(*entry)->Status(), (*entry)->request_digest};
}

std::optional<v1::LinkedNeed> ReferralView::FindOpen(const std::string& client_pseudonym,
                                                     const std::string& need_code) {
  if (client_pseudonym.empty()) return std::nullopt;
  // The client's referrals in the order the view first stored them.
  absl::StatusOr<std::vector<std::string>> bodies =
      Reading([&](Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        sqlite::Statement& find = c.by_client;
        sqlite::ScopedReset reset(find);
        find.BindText(1, client_pseudonym);
        std::vector<std::string> found;
        absl::StatusOr<bool> row;
        while ((row = find.Step()).ok() && *row) found.push_back(find.Blob(0));
        if (!row.ok()) return row.status();
        return found;
      });
  if (!bodies.ok()) return std::nullopt;
  for (const std::string& body : *bodies) {
    v1::ReferralStatus status;
    status.ParseFromString(body);
    for (const v1::NeedStatus& need : status.needs()) {
      if (need.need_code() != need_code || need.unroutable() || !need.linked_to().empty() ||
          need.assignment_id().empty() || referral::IsFinal(need.status())) {
        continue;
      }
      v1::LinkedNeed linked;
      linked.set_need_code(need_code);
      linked.set_assignment_id(need.assignment_id());
      linked.set_organisation(need.organisation());
      return linked;
    }
  }
  return std::nullopt;
}

std::optional<ReferralView::ClientKeyRef> ReferralView::ClientKeyOf(
    const std::string& referral_id) {
  absl::StatusOr<std::optional<Entry>> entry =
      Reading([&](Connection& c) { return LoadEntry<Entry>(c.load, referral_id); });
  if (!entry.ok() || !*entry) return std::nullopt;
  return ClientKeyRef{(*entry)->client_key_id, (*entry)->client_pseudonym};
}

absl::StatusOr<v1::NeedStatus> ReferralView::FindAssignment(
    const std::string& referring_organisation, const std::string& assignment_id) {
  const absl::Status not_found = absl::NotFoundError("assignment not found");
  const std::string referral_id = ReferralIdOf(assignment_id);
  if (referral_id.empty()) return not_found;
  absl::StatusOr<std::optional<Entry>> entry =
      Reading([&](Connection& c) { return LoadEntry<Entry>(c.load, referral_id); });
  if (!entry.ok()) return entry.status();
  if (!*entry || (*entry)->referring_organisation != referring_organisation) return not_found;
  const v1::ReferralStatus status = (*entry)->Status();
  for (const v1::NeedStatus& need : status.needs()) {
    for (const v1::ReferralEvent& event : need.history()) {
      if (event.assignment_id() == assignment_id) return need;
    }
  }
  return not_found;
}

absl::StatusOr<v1::ListReferralsResponse> ReferralView::List(
    const std::string& referring_organisation, int page_size, const std::string& page_token) {
  v1::ListReferralsResponse response;
  if (page_size <= 0) return response;
  // Newest first, ties by id, so pages are stable; a page starts after its token's referral.
  return Reading([&](Connection& c) -> absl::StatusOr<v1::ListReferralsResponse> {
    std::int64_t after_seconds = 0;
    std::int64_t after_nanos = 0;
    if (!page_token.empty()) {
      sqlite::Statement& token = c.page_start;
      sqlite::ScopedReset reset(token);
      token.BindText(1, page_token).BindText(2, referring_organisation);
      absl::StatusOr<bool> found = token.Step();
      if (!found.ok()) return found.status();
      if (!*found) return absl::InvalidArgumentError("page_token: is not valid");
      after_seconds = token.Int64(0);
      after_nanos = token.Int64(1);
    }
    sqlite::Statement& page = page_token.empty() ? c.first_page : c.next_page;
    sqlite::ScopedReset reset(page);
    page.BindText(1, referring_organisation).BindInt64(5, page_size + 1);
    if (!page_token.empty()) {
      page.BindInt64(2, after_seconds).BindInt64(3, after_nanos).BindText(4, page_token);
    }
    absl::StatusOr<bool> row;
    bool more = false;
    while ((row = page.Step()).ok() && *row) {
      if (response.referrals_size() == page_size) {
        more = true;
        break;
      }
      response.add_referrals()->ParseFromString(page.Blob(1));
    }
    if (!row.ok()) return row.status();
    if (more) {
      response.set_next_page_token(response.referrals(response.referrals_size() - 1).referral_id());
    }
    return response;
  });
}

int ReferralView::Subscribe(Listener listener) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_[next_listener_] = std::move(listener);
  return next_listener_++;
}

void ReferralView::Unsubscribe(int handle) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(handle);
}

}  // namespace schakel::intake
