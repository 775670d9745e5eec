// JSON as etcdctl prints it with `-w json`: Go's encoding/json applied to
// the Go structs etcd generates from its protos. That differs from the
// protobuf JSON mapping: 64-bit integers and enums are numbers, every field
// is omitted when zero or empty (a present sub-message prints even when
// empty), names are the .proto field names, bytes are standard base64, and a
// oneof prints as {"<Oneof>":{"<Field>":...}} with Go's CamelCase names.
// Strings are escaped as Go escapes them (<, >, & and U+2028/9 as \u
// sequences; invalid UTF-8 as U+FFFD).
//
// Thread safety: pure functions.
#ifndef ARBITER_CLI_GO_JSON_H_
#define ARBITER_CLI_GO_JSON_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace arbiter::cli {

std::string GoJson(const google::protobuf::Message& message);
// A JSON string literal, quotes included.
std::string GoJsonString(absl::string_view s);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_GO_JSON_H_
