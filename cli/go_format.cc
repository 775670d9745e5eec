#include "cli/go_format.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace arbiter::cli {
namespace {

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

absl::Status NumError(absl::string_view func, absl::string_view s, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("strconv.", func, ": parsing ", GoQuote(s), ": ", what));
}

// Digits only (no sign), in base; false on syntax error, *overflow on
// values above max.
bool ParseDigits(absl::string_view s, int base, uint64_t max, uint64_t* out, bool* overflow) {
  *overflow = false;
  if (s.empty()) return false;
  uint64_t value = 0;
  for (char c : s) {
    const int d = DigitValue(c);
    if (d >= base) return false;
    if (*overflow) continue;
    if (value > (max - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      *overflow = true;
      continue;
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  *out = value;
  return true;
}

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 if invalid.
int DecodeRune(absl::string_view s, size_t i, uint32_t* rune) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) {
    *rune = c;
    return 1;
  }
  int len = 0;
  uint32_t r = 0;
  uint32_t min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, r = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, r = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, r = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    r = (r << 6) | (b(i + k) & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return 0;
  *rune = r;
  return len;
}

void AppendUtf8(uint32_t r, std::string* out) {
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

// Decodes the escape at s[*i] (a backslash) into *out and moves *i past
// it; false when it is not a valid Go escape in a double-quoted string.
bool DecodeEscape(absl::string_view s, size_t* pos, std::string* out) {
  size_t& i = *pos;
  if (i + 1 >= s.size()) return false;
  const char e = s[i + 1];
  i += 2;
  const auto hex = [&](int n) -> std::optional<uint32_t> {
    if (i + n > s.size()) return std::nullopt;
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      const int d = DigitValue(s[i + k]);
      if (d >= 16) return std::nullopt;
      v = v * 16 + d;
    }
    i += n;
    return v;
  };
  static constexpr absl::string_view kSimple = "abfnrtv\\\"";
  static constexpr absl::string_view kDecoded = "\a\b\f\n\r\t\v\\\"";
  if (const size_t k = kSimple.find(e); k != absl::string_view::npos) {
    out->push_back(kDecoded[k]);
    return true;
  }
  if (e == 'x') {
    std::optional<uint32_t> v = hex(2);
    if (!v) return false;
    out->push_back(static_cast<char>(*v));
    return true;
  }
  if (e == 'u' || e == 'U') {
    std::optional<uint32_t> v = hex(e == 'u' ? 4 : 8);
    if (!v || *v > 0x10FFFF || (*v >= 0xD800 && *v <= 0xDFFF)) return false;
    AppendUtf8(*v, out);
    return true;
  }
  // Three octal digits.
  if (e < '0' || e > '7' || i + 2 > s.size()) return false;
  uint32_t v = static_cast<uint32_t>(e - '0');
  for (int k = 0; k < 2; ++k) {
    if (s[i] < '0' || s[i] > '7') return false;
    v = v * 8 + static_cast<uint32_t>(s[i++] - '0');
  }
  if (v > 255) return false;
  out->push_back(static_cast<char>(v));
  return true;
}

// Go's unicode.IsPrint, approximated outside ASCII: controls, the soft
// hyphen and the line and paragraph separators are not printable.
bool IsPrint(uint32_t r) {
  if (r < 0x80) return r >= 0x20 && r < 0x7F;
  if (r < 0xA0 || r == 0xAD) return false;
  return !(r >= 0x2028 && r <= 0x2029) && !(r >= 0xE000 && r <= 0xF8FF);
}

// Digits of v / 10^prec with the fraction's trailing zeros dropped, as
// Go's fmtFrac and fmtInt print them together.
std::string Fraction(uint64_t v, int prec) {
  uint64_t scale = 1;
  for (int i = 0; i < prec; ++i) scale *= 10;
  std::string frac = absl::StrFormat("%0*d", prec, v % scale);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string out = absl::StrCat(v / scale);
  if (!frac.empty()) absl::StrAppend(&out, ".", frac);
  return out;
}

}  // namespace

absl::StatusOr<int64_t> GoParseInt(absl::string_view s, int base) {
  absl::string_view digits = s;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (base == 0) {
    // The base from the prefix, as Go's base 0 (pflag's int flags).
    base = 10;
    if (digits.size() > 1 && digits[0] == '0') {
      const char p = static_cast<char>(digits[1] | 0x20);
      base = p == 'x' ? 16 : p == 'b' ? 2 : 8;
      digits.remove_prefix(p == 'x' || p == 'b' || p == 'o' ? 2 : 1);
    }
  }
  const uint64_t max = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t value = 0;
  bool overflow = false;
  if (!ParseDigits(digits, base, max, &value, &overflow)) {
    return NumError("ParseInt", s, "invalid syntax");
  }
  if (overflow) return NumError("ParseInt", s, "value out of range");
  if (negative) return static_cast<int64_t>(0 - value);
  return static_cast<int64_t>(value);
}

absl::StatusOr<uint64_t> GoParseUint(absl::string_view s, int base) {
  uint64_t value = 0;
  bool overflow = false;
  if (!ParseDigits(s, base, std::numeric_limits<uint64_t>::max(), &value, &overflow)) {
    return NumError("ParseUint", s, "invalid syntax");
  }
  if (overflow) return NumError("ParseUint", s, "value out of range");
  return value;
}

absl::StatusOr<bool> GoParseBool(absl::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return NumError("ParseBool", s, "invalid syntax");
}

absl::StatusOr<absl::Duration> GoParseDuration(absl::string_view s) {
  const auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat("time: invalid duration ", GoQuote(s)));
  };
  absl::string_view rest = s;
  bool negative = false;
  if (!rest.empty() && (rest[0] == '-' || rest[0] == '+')) {
    negative = rest[0] == '-';
    rest.remove_prefix(1);
  }
  if (rest == "0") return absl::ZeroDuration();
  if (rest.empty()) return invalid();
  double total_ns = 0;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && absl::ascii_isdigit(rest[i])) ++i;
    const size_t int_digits = i;
    size_t frac_digits = 0;
    if (i < rest.size() && rest[i] == '.') {
      ++i;
      while (i < rest.size() && absl::ascii_isdigit(rest[i])) ++i, ++frac_digits;
    }
    if (int_digits == 0 && frac_digits == 0) return invalid();
    const double number = std::strtod(std::string(rest.substr(0, i)).c_str(), nullptr);
    rest.remove_prefix(i);
    size_t u = 0;
    while (u < rest.size() && rest[u] != '.' && !absl::ascii_isdigit(rest[u])) ++u;
    if (u == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("time: missing unit in duration ", GoQuote(s)));
    }
    const absl::string_view unit = rest.substr(0, u);
    rest.remove_prefix(u);
    double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("time: unknown unit ", GoQuote(unit), " in duration ", GoQuote(s)));
    }
    total_ns += number * scale;
  }
  if (total_ns > 9.2e18) return invalid();
  const absl::Duration d = absl::Nanoseconds(static_cast<int64_t>(total_ns));
  return negative ? -d : d;
}

std::string GoDurationString(absl::Duration d) {
  int64_t ns = absl::ToInt64Nanoseconds(d);
  if (ns == 0) return "0s";
  const bool negative = ns < 0;
  const uint64_t u = negative ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  std::string out;
  if (u < 1000000000) {
    if (u < 1000) {
      out = absl::StrCat(u, "ns");
    } else if (u < 1000000) {
      out = absl::StrCat(Fraction(u, 3), "\xC2\xB5s");
    } else {
      out = absl::StrCat(Fraction(u, 6), "ms");
    }
  } else {
    uint64_t secs = u / 1000000000;
    std::string s = absl::StrCat(Fraction(u % 1000000000 + (secs % 60) * 1000000000, 9), "s");
    const uint64_t minutes = secs / 60;
    if (minutes > 0) {
      s = absl::StrCat(minutes % 60, "m", s);
      if (minutes / 60 > 0) s = absl::StrCat(minutes / 60, "h", s);
    }
    out = s;
  }
  return negative ? "-" + out : out;
}

std::string GoQuote(absl::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    uint32_t r = 0;
    const int len = DecodeRune(s, i, &r);
    if (len == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    i += len;
    if (r == '"' || r == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(r));
    } else if (IsPrint(r)) {
      AppendUtf8(r, &out);
    } else if (r == '\a') {
      out += "\\a";
    } else if (r == '\b') {
      out += "\\b";
    } else if (r == '\f') {
      out += "\\f";
    } else if (r == '\n') {
      out += "\\n";
    } else if (r == '\r') {
      out += "\\r";
    } else if (r == '\t') {
      out += "\\t";
    } else if (r == '\v') {
      out += "\\v";
    } else if (r < ' ' || r == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", r);
    } else if (r < 0x10000) {
      absl::StrAppendFormat(&out, "\\u%04x", r);
    } else {
      absl::StrAppendFormat(&out, "\\U%08x", r);
    }
  }
  out.push_back('"');
  return out;
}

std::optional<std::string> GoUnquotePrefix(absl::string_view s, size_t* consumed) {
  if (s.empty()) return std::nullopt;
  if (s[0] == '`') {
    const size_t end = s.find('`', 1);
    if (end == absl::string_view::npos) return std::nullopt;
    *consumed = end + 1;
    std::string raw(s.substr(1, end - 1));
    raw.erase(std::remove(raw.begin(), raw.end(), '\r'), raw.end());
    return raw;
  }
  if (s[0] != '"') return std::nullopt;
  std::string out;
  for (size_t i = 1; i < s.size();) {
    const char c = s[i];
    if (c == '"') {
      *consumed = i + 1;
      return out;
    }
    if (c == '\n') return std::nullopt;
    if (c != '\\') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (!DecodeEscape(s, &i, &out)) return std::nullopt;
  }
  return std::nullopt;
}

std::string HumanizeBytes(uint64_t bytes) {
  if (bytes < 10) return absl::StrCat(bytes, " B");
  static const char* const kSizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  const double s = static_cast<double>(bytes);
  const double e = std::floor(std::log(s) / std::log(1000.0));
  const double val = std::floor(s / std::pow(1000.0, e) * 10 + 0.5) / 10;
  return absl::StrFormat(val < 10 ? "%.1f %s" : "%.0f %s", val, kSizes[static_cast<int>(e)]);
}

std::string GoCodeName(int code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (code >= 0 && code < 17) return kNames[code];
  return absl::StrCat("Code(", code, ")");
}

}  // namespace arbiter::cli
