#include "services/inbox/personal_data.h"

#include "absl/strings/str_cat.h"
#include "libs/privacy/sealed.h"

namespace schakel::inbox {

void ErasePersonalData(v1::Assignment& assignment) {
  assignment.clear_need_details();
  assignment.clear_client_name();
  assignment.clear_client_contact();
  assignment.clear_status_reason();
  assignment.clear_outcome();
  assignment.clear_cancellation_requested();
  for (v1::StatusChange& change : *assignment.mutable_history()) {
    if (change.by() == "network") continue;  // the network's rules wrote it, no person
    change.clear_reason();
    change.clear_outcome();
  }
  assignment.set_erased(true);
}

absl::StatusOr<std::optional<std::string>> OpenTyped(const v1::Sealed& sealed,
                                                     const std::optional<store::DataKey>& key,
                                                     std::string_view context) {
  if (!key.has_value() || key->key_id != sealed.key_id()) return std::nullopt;
  absl::StatusOr<std::string> text = privacy::Open(sealed, key->key, context);
  if (!text.ok()) return text.status();
  return *std::move(text);
}

absl::Status NoKeyService() {
  return absl::UnavailableError("this inbox has no key service to open sealed data with");
}

absl::StatusOr<std::optional<privacy::AssignmentKeyAsk>> KeyToOpen(
    const v1::AssignmentRequested& event) {
  const bool client_sealed = !event.sealed_client().key_id().empty();
  const bool need_sealed = !event.sealed_need_details().key_id().empty();
  if (!client_sealed && !need_sealed) return std::nullopt;
  const std::string& id = event.meta().assignment_id();
  const std::string& key_id =
      need_sealed ? event.sealed_need_details().key_id() : event.sealed_client().key_id();
  if (client_sealed && need_sealed && event.sealed_client().key_id() != key_id) {
    return absl::DataLossError(
        absl::StrCat("assignment ", id, ": its sealed fields name different keys"));
  }
  return privacy::AssignmentKeyAsk{.assignment_id = id, .key_id = key_id};
}

absl::Status OpenWithKey(const v1::AssignmentRequested& event,
                         const absl::StatusOr<v1::DataKey>& key, v1::Assignment& assignment) {
  const std::string& id = event.meta().assignment_id();
  if (absl::IsFailedPrecondition(key.status())) {
    ErasePersonalData(assignment);
    return absl::OkStatus();
  }
  if (absl::IsNotFound(key.status())) {
    // Sealed with a key this network's key service never made: no wait will open it.
    assignment.clear_need_details();
    assignment.set_personal_data_unavailable(true);
    return absl::OkStatus();
  }
  if (!key.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the key of assignment ", id, " cannot be had now: ", key.status().message()));
  }
  const std::string& referral_id = event.meta().referral_id();
  if (!event.sealed_need_details().key_id().empty()) {
    absl::StatusOr<std::string> details =
        privacy::Open(event.sealed_need_details(), key->key(),
                      privacy::NeedContext(referral_id, event.need_index()));
    if (!details.ok()) {
      return absl::DataLossError(absl::StrCat("sealed_need_details: ", details.status().message()));
    }
    assignment.set_need_details(*std::move(details));
  }
  if (!event.sealed_client().key_id().empty()) {
    absl::StatusOr<std::string> bytes =
        privacy::Open(event.sealed_client(), key->key(), privacy::ClientContext(referral_id));
    v1::ClientDetails client;
    if (!bytes.ok() || !client.ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat(
          "sealed_client: ", bytes.ok() ? "does not parse" : bytes.status().message()));
    }
    assignment.set_client_name(client.name());
    assignment.set_client_contact(client.contact());
  }
  return absl::OkStatus();
}

absl::Status OpenPersonalData(const v1::AssignmentRequested& event,
                              privacy::AssignmentKeySource* keys, v1::Assignment& assignment) {
  absl::StatusOr<std::optional<privacy::AssignmentKeyAsk>> ask = KeyToOpen(event);
  if (!ask.ok()) return ask.status();
  if (!ask->has_value()) return absl::OkStatus();
  if (keys == nullptr) return OpenWithKey(event, NoKeyService(), assignment);
  return OpenWithKey(event, keys->AssignmentKey((*ask)->assignment_id, (*ask)->key_id), assignment);
}

}  // namespace schakel::inbox
