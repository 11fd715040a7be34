// Owner proofs: how the router knows that a status change or a forward request of an assignment
// was made by the organisation it offered the assignment to, and not by another inbox that may
// write the same shared topics (schakel.assignments.status, schakel.assignments.forwarding).
//
// The router puts a fresh random token in every offer (AssignmentRequested.owner_token). Only the
// owner's inbox topic and the router's own state carry it. The owner's inbox proves each change
// and forward request with it: owner_proof = crypto_auth (libsodium, HMAC-SHA-512-256) keyed with
// the token over the canonical bytes below; the router checks the proof with the token of the
// offer it made. Another organisation never sees the token, so it cannot make a proof that
// verifies, and a proof made for one assignment does not verify for another (the ids are in it).
//
// The canonical bytes (what is authenticated), byte by byte. Every item is written as a 4-byte
// unsigned big-endian length followed by that many bytes; a string is its UTF-8 bytes as they are
// in the event, a number is big-endian of fixed width (version: 8 bytes, a status: the 4-byte
// two's complement of its enum number), so no two events share an encoding:
//   AssignmentStatusChanged:
//     "schakel.owner-proof.v1", "status", meta.referral_id, meta.assignment_id, version (8),
//     from_status (4), to_status (4), organisation, by, forward_to
//   ForwardRequested:
//     "schakel.owner-proof.v1", "forward", meta.referral_id, meta.assignment_id,
//     from_organisation, to_organisation
// e.g. the item "status" is 00 00 00 06 73 74 61 74 75 73, and version 2 is
// 00 00 00 08 00 00 00 00 00 00 00 02 (owner_proof_test.cc pins whole encodings).
//
// What the proof does not cover: the reason and outcome (sealed with the client's key, whose
// associated data binds them to the assignment and version), need code, referring organisation,
// the proposed offer inside a ForwardRequested (the router builds the offer from its own state)
// and the event id and time. A proven change can be repeated as it is (the router applies each
// change once); it cannot be changed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "schakel/v1/events.pb.h"

namespace schakel::privacy {

inline constexpr std::size_t kOwnerTokenBytes = 32;  // crypto_auth_KEYBYTES
inline constexpr std::size_t kOwnerProofBytes = 32;  // crypto_auth_BYTES
inline constexpr std::string_view kOwnerProofDomain = "schakel.owner-proof.v1";

// kOwnerTokenBytes random bytes (libsodium randombytes_buf), for one offer.
std::string NewOwnerToken();

// The canonical bytes of a change and of a forward request (see above).
std::string OwnerProofInput(const v1::AssignmentStatusChanged& change);
std::string OwnerProofInput(const v1::ForwardRequested& forward);

// The proof of `change` / `forward` with `token`; INVALID_ARGUMENT when the token is not
// kOwnerTokenBytes long. The event's own owner_proof is not part of what is proven.
absl::StatusOr<std::string> ProveOwner(std::string_view token,
                                       const v1::AssignmentStatusChanged& change);
absl::StatusOr<std::string> ProveOwner(std::string_view token, const v1::ForwardRequested& forward);

// Whether the event's owner_proof was made with `token` over this event (constant-time
// comparison). False for a token or a proof of the wrong size, an empty one included.
bool VerifyOwner(std::string_view token, const v1::AssignmentStatusChanged& change);
bool VerifyOwner(std::string_view token, const v1::ForwardRequested& forward);

}  // namespace schakel::privacy
