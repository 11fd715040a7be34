// Opening the personal data of an offer: the client's details and the need's details arrive sealed
// with the client's key (libs/privacy/sealed.h); the inbox asks the key service for that key (it is
// handed only to the organisation the assignment was offered to) and stores the opened text in its
// own database, which only this organisation reads. An erased client's key is gone: the assignment
// is stored marked erased, without personal data.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/privacy/key_client.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/inbox.pb.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

// Fills `assignment`'s need_details, client_name and client_contact from `event`'s sealed fields
// (or sets erased; or personal_data_unavailable when the key service never made the key). OK at
// once when nothing is sealed. UNAVAILABLE when the key cannot be had now
// (no key service, not reachable, the grant not there yet): try again later. DATA_LOSS when a
// sealed field does not open with the client's key (changed or misplaced): the record is unusable.
absl::Status OpenPersonalData(const v1::AssignmentRequested& event,
                              privacy::AssignmentKeySource* keys, v1::Assignment& assignment);

// The same in two steps, so that the keys of many offers can be asked for together:
// The key `event`'s sealed fields need; none when nothing is sealed. DATA_LOSS when its sealed
// fields name different keys.
absl::StatusOr<std::optional<privacy::AssignmentKeyAsk>> KeyToOpen(
    const v1::AssignmentRequested& event);
// What an inbox without a key service has instead of a key (UNAVAILABLE).
absl::Status NoKeyService();
// Opens `event`'s sealed fields with `key`, the key service's answer to KeyToOpen's ask (or
// UNAVAILABLE when there is no key service), with the results OpenPersonalData describes.
absl::Status OpenWithKey(const v1::AssignmentRequested& event,
                         const absl::StatusOr<v1::DataKey>& key, v1::Assignment& assignment);

// Removes every personal field from a stored assignment (erasure): name, contact, need details,
// and what people typed about it (status reason, outcome, the referrer's cancellation request, and
// those of its history except the network's own).
void ErasePersonalData(v1::Assignment& assignment);

// What a person typed, sealed with the client's key (a status change's reason or outcome, a
// referrer's reason to cancel), opened with the assignment's key as the inbox keeps it. None when
// the inbox has no key for it (the client was erased, or the offer came before keys were kept):
// nobody here can read it. DATA_LOSS when it does not open with the key it names (changed or
// moved).
absl::StatusOr<std::optional<std::string>> OpenTyped(const v1::Sealed& sealed,
                                                     const std::optional<store::DataKey>& key,
                                                     std::string_view context);

}  // namespace schakel::inbox
