// The formats arbiterctl shares with etcdctl, which is written in Go: number
// and duration parsing with Go's error messages, Go's quoted strings (%q),
// durations as Go prints them, and sizes as go-humanize prints them. Users
// and scripts see these strings, so they follow Go byte for byte.
//
// Thread safety: pure functions.
#ifndef ARBITER_CLI_GO_FORMAT_H_
#define ARBITER_CLI_GO_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace arbiter::cli {

// strconv.ParseInt(s, base, 64); the error reads
// `strconv.ParseInt: parsing "abc": invalid syntax` (or "value out of range").
// Base 0 takes the base from the prefix (0x, 0b, 0o or 0 for octal).
absl::StatusOr<int64_t> GoParseInt(absl::string_view s, int base);
// strconv.ParseUint(s, base, 64), with "strconv.ParseUint" errors.
absl::StatusOr<uint64_t> GoParseUint(absl::string_view s, int base);
// strconv.ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.
absl::StatusOr<bool> GoParseBool(absl::string_view s);

// time.ParseDuration: "5s", "1m30s", "250ms", "1.5h"; errors read
// `time: invalid duration "x"`.
absl::StatusOr<absl::Duration> GoParseDuration(absl::string_view s);
// time.Duration.String(): "2s", "1m30s", "10.613615ms", "850µs", "0s".
std::string GoDurationString(absl::Duration d);

// strconv.Quote: "\"a\\n\"" for a\n; valid UTF-8 that prints stays as is.
std::string GoQuote(absl::string_view s);
// Reads one Go quoted string ("..." with escapes, or `...`) at the start
// of s. On success sets *consumed to its length in s. nullopt when s does
// not start with a well-formed quoted string.
std::optional<std::string> GoUnquotePrefix(absl::string_view s, size_t* consumed);

// humanize.Bytes: SI units, "20 kB", "1.5 MB", "9 B".
std::string HumanizeBytes(uint64_t bytes);

// The name of a gRPC status code as grpc-go prints it ("InvalidArgument").
std::string GoCodeName(int code);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_GO_FORMAT_H_
