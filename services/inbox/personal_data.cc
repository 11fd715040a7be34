#include "services/inbox/personal_data.h"

#include "absl/strings/str_cat.h"
#include "libs/privacy/sealed.h"

namespace schakel::inbox {

void ErasePersonalData(v1::Assignment& assignment) {
  assignment.clear_need_details();
  assignment.clear_client_name();
  assignment.clear_client_contact();
  assignment.set_erased(true);
}

absl::Status OpenPersonalData(const v1::AssignmentRequested& event,
                              privacy::AssignmentKeySource* keys, v1::Assignment& assignment) {
  const bool client_sealed = !event.sealed_client().key_id().empty();
  const bool need_sealed = !event.sealed_need_details().key_id().empty();
  if (!client_sealed && !need_sealed) return absl::OkStatus();
  const std::string& id = event.meta().assignment_id();
  if (keys == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("assignment ", id, " carries sealed data and this inbox has no key service"));
  }
  const std::string& key_id =
      need_sealed ? event.sealed_need_details().key_id() : event.sealed_client().key_id();
  if (client_sealed && need_sealed && event.sealed_client().key_id() != key_id) {
    return absl::DataLossError(
        absl::StrCat("assignment ", id, ": its sealed fields name different keys"));
  }
  absl::StatusOr<v1::DataKey> key = keys->AssignmentKey(id, key_id);
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
  if (need_sealed) {
    absl::StatusOr<std::string> details =
        privacy::Open(event.sealed_need_details(), key->key(),
                      privacy::NeedContext(referral_id, event.need_index()));
    if (!details.ok()) {
      return absl::DataLossError(absl::StrCat("sealed_need_details: ", details.status().message()));
    }
    assignment.set_need_details(*std::move(details));
  }
  if (client_sealed) {
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

}  // namespace schakel::inbox
