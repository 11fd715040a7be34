#include "services/intake/referral_view.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

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

absl::StatusOr<std::unique_ptr<ReferralView>> ReferralView::Open(const std::string& path) {
  // Only intake opens the file, so there is no other connection's lock to wait for; every failure
  // is UNAVAILABLE: the view's consumer waits and tries again.
  absl::StatusOr<sqlite::Database> db =
      sqlite::Database::Open(path, {.name = "referral view",
                                    .errors = sqlite::Errors::kAllUnavailable,
                                    .require_wal = false,
                                    .busy_timeout_ms = 0});
  if (!db.ok()) return db.status();
  if (absl::Status s = db->Exec(
          "CREATE TABLE IF NOT EXISTS referrals (referral_id TEXT PRIMARY KEY NOT NULL,"
          " referring_organisation TEXT NOT NULL, body BLOB NOT NULL,"
          " client_pseudonym TEXT NOT NULL DEFAULT '', request_digest TEXT NOT NULL DEFAULT '',"
          " client_key_id TEXT NOT NULL DEFAULT '');",
          "schema");
      !s.ok()) {
    return s;
  }
  // Files made before duplicate linking have no pseudonym column yet (the error when it exists is
  // expected and ignored).
  for (const char* column : {"client_pseudonym", "request_digest", "client_key_id"}) {
    (void)db->Exec(
        absl::StrCat("ALTER TABLE referrals ADD COLUMN ", column, " TEXT NOT NULL DEFAULT ''")
            .c_str(),
        "schema");
  }
  absl::StatusOr<sqlite::Statement> load = db->Prepare(
      "SELECT referral_id, referring_organisation, body, client_pseudonym,"
      " request_digest, client_key_id FROM referrals",
      "load");
  if (!load.ok()) return load.status();
  std::unique_ptr<ReferralView> view(new ReferralView(*std::move(db)));
  absl::MutexLock lock(&view->mu_);
  absl::StatusOr<bool> row;
  while ((row = load->Step()).ok() && *row) {
    Entry entry;
    entry.referring_organisation = load->Text(1);
    entry.body = load->Blob(2);
    const v1::ReferralStatus status = entry.Status();
    entry.submitted_seconds = status.submitted_at().seconds();
    entry.submitted_nanos = status.submitted_at().nanos();
    entry.client_pseudonym = load->Text(3);
    entry.request_digest = load->Text(4);
    entry.client_key_id = load->Text(5);
    const std::string id = load->Text(0);
    if (!entry.client_pseudonym.empty()) view->by_client_.emplace(entry.client_pseudonym, id);
    view->referrals_[id] = std::move(entry);
  }
  if (!row.ok()) return row.status();
  return view;
}

ReferralView::~ReferralView() = default;

v1::ReferralStatus ReferralView::Entry::Status() const {
  v1::ReferralStatus status;
  // Only ever written by SerializeAsString (or loaded from what it wrote).
  status.ParseFromString(body);
  return status;
}

absl::Status ReferralView::SaveAll(const std::vector<std::pair<std::string, Entry>>& entries) {
  return sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) -> absl::Status {
    absl::StatusOr<sqlite::Statement> save = tx.db().Prepare(
        "INSERT INTO referrals (referral_id, referring_organisation, body, client_pseudonym,"
        " request_digest, client_key_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (referral_id)"
        " DO UPDATE SET referring_organisation = excluded.referring_organisation,"
        " body = excluded.body, client_pseudonym = excluded.client_pseudonym,"
        " request_digest = excluded.request_digest, client_key_id = excluded.client_key_id",
        "save");
    if (!save.ok()) return save.status();
    for (const auto& [id, entry] : entries) {
      save->BindText(1, id)
          .BindText(2, entry.referring_organisation)
          .BindBlob(3, entry.body)
          .BindText(4, entry.client_pseudonym)
          .BindText(5, entry.request_digest)
          .BindText(6, entry.client_key_id);
      if (absl::Status s = tx.Run(*save); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::Status ReferralView::FoldLocked(const std::string& topic, const std::string& value,
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
  Entry& entry = referrals_[referral_id];
  // Who referred it is what the submission says (intake alone writes that topic). A later fact
  // naming another referrer changes nothing: the referral stays its referrer's.
  if (entry.referring_organisation.empty() || topic == topology::kSubmittedTopic) {
    entry.referring_organisation = referring_organisation;
  } else if (entry.referring_organisation != referring_organisation) {
    return absl::InvalidArgumentError(
        absl::StrCat("referring_organisation: not the referral's referrer (", topic, ")"));
  }
  if (!submitted.client_pseudonym().empty() && entry.client_pseudonym.empty()) {
    entry.client_pseudonym = submitted.client_pseudonym();
    by_client_.emplace(entry.client_pseudonym, referral_id);
  }
  if (!submitted.request_digest().empty()) entry.request_digest = submitted.request_digest();
  if (!submitted.sealed_client().key_id().empty()) {
    entry.client_key_id = submitted.sealed_client().key_id();
    dirty_.insert(referral_id);
  }
  v1::ReferralStatus current = entry.Status();
  if (!apply(&current)) return absl::OkStatus();
  entry.body = current.SerializeAsString();
  entry.submitted_seconds = current.submitted_at().seconds();
  entry.submitted_nanos = current.submitted_at().nanos();
  dirty_.insert(referral_id);
  changed->push_back({entry.referring_organisation, std::move(current)});
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
  absl::MutexLock apply_lock(&apply_mu_);
  std::vector<Changed> changed;
  std::vector<std::pair<std::string, Entry>> to_save;
  {
    absl::MutexLock lock(&mu_);
    for (const RecordRef& record : records) {
      results->push_back(FoldLocked(record.topic, record.value, &changed));
    }
    // Also what an earlier call changed but could not store.
    for (const std::string& id : dirty_) to_save.emplace_back(id, referrals_.at(id));
  }
  if (!to_save.empty()) {
    // Only appliers change entries, and they hold apply_mu_: the copies stay current.
    if (absl::Status saved = SaveAll(to_save); !saved.ok()) return saved;
    absl::MutexLock lock(&mu_);
    dirty_.clear();
  }
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
  absl::MutexLock lock(&mu_);
  const auto it = referrals_.find(referral_id);
  if (it == referrals_.end() || it->second.referring_organisation != referring_organisation) {
    return absl::NotFoundError("referral not found");
  }
  return it->second.Status();
}

std::optional<ReferralView::Submitted> ReferralView::FindSubmitted(
    const std::string& referring_organisation, const std::string& referral_id) {
  absl::MutexLock lock(&mu_);
  const auto it = referrals_.find(referral_id);
  if (it == referrals_.end() || it->second.referring_organisation != referring_organisation) {
    return std::nullopt;
  }
  return Submitted{it->second.Status(), it->second.request_digest};
}

std::optional<v1::LinkedNeed> ReferralView::FindOpen(const std::string& client_pseudonym,
                                                     const std::string& need_code) {
  absl::MutexLock lock(&mu_);
  auto [begin, end] = by_client_.equal_range(client_pseudonym);
  for (auto it = begin; it != end; ++it) {
    const auto found = referrals_.find(it->second);
    if (found == referrals_.end()) continue;
    const v1::ReferralStatus status = found->second.Status();
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
  absl::MutexLock lock(&mu_);
  const auto it = referrals_.find(referral_id);
  if (it == referrals_.end()) return std::nullopt;
  return ClientKeyRef{it->second.client_key_id, it->second.client_pseudonym};
}

absl::StatusOr<v1::NeedStatus> ReferralView::FindAssignment(
    const std::string& referring_organisation, const std::string& assignment_id) {
  const absl::Status not_found = absl::NotFoundError("assignment not found");
  const std::string referral_id = ReferralIdOf(assignment_id);
  if (referral_id.empty()) return not_found;
  absl::MutexLock lock(&mu_);
  const auto it = referrals_.find(referral_id);
  if (it == referrals_.end() || it->second.referring_organisation != referring_organisation) {
    return not_found;
  }
  const v1::ReferralStatus status = it->second.Status();
  for (const v1::NeedStatus& need : status.needs()) {
    for (const v1::ReferralEvent& event : need.history()) {
      if (event.assignment_id() == assignment_id) return need;
    }
  }
  return not_found;
}

absl::StatusOr<v1::ListReferralsResponse> ReferralView::List(
    const std::string& referring_organisation, int page_size, const std::string& page_token) {
  absl::MutexLock lock(&mu_);
  struct Mine {
    const std::string* id;
    const Entry* entry;
  };
  std::vector<Mine> mine;
  for (const auto& [id, entry] : referrals_) {
    if (entry.referring_organisation == referring_organisation) mine.push_back({&id, &entry});
  }
  // Newest first, ties by id, so pages are stable.
  std::sort(mine.begin(), mine.end(), [](const Mine& a, const Mine& b) {
    if (a.entry->submitted_seconds != b.entry->submitted_seconds) {
      return a.entry->submitted_seconds > b.entry->submitted_seconds;
    }
    if (a.entry->submitted_nanos != b.entry->submitted_nanos) {
      return a.entry->submitted_nanos > b.entry->submitted_nanos;
    }
    return *a.id > *b.id;
  });
  std::size_t start = 0;
  if (!page_token.empty()) {
    const auto it =
        std::find_if(mine.begin(), mine.end(), [&](const Mine& r) { return *r.id == page_token; });
    if (it == mine.end()) return absl::InvalidArgumentError("page_token: is not valid");
    start = static_cast<std::size_t>(it - mine.begin()) + 1;
  }
  v1::ListReferralsResponse response;
  for (std::size_t i = start; i < mine.size() && response.referrals_size() < page_size; ++i) {
    *response.add_referrals() = mine[i].entry->Status();
  }
  if (start + static_cast<std::size_t>(response.referrals_size()) < mine.size()) {
    response.set_next_page_token(response.referrals(response.referrals_size() - 1).referral_id());
  }
  return response;
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
