#include "cli/go_json.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace arbiter::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// protoc-gen-go's CamelCase: "response_range" -> "ResponseRange".
std::string GoName(absl::string_view proto_name) {
  std::string out;
  bool upper = true;
  for (char c : proto_name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out.push_back(upper ? absl::ascii_toupper(c) : c);
    upper = false;
  }
  return out;
}

void AppendMessage(const Message& message, std::string* out);

// One non-repeated value of a field.
void AppendValue(const Message& message, const FieldDescriptor* field, std::string* out) {
  const Reflection* r = message.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, r->GetInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, r->GetInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, r->GetUInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, r->GetUInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      absl::StrAppend(out, r->GetBool(message, field) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      absl::StrAppend(out, r->GetEnumValue(message, field));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = r->GetString(message, field);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        absl::StrAppend(out, "\"", absl::Base64Escape(s), "\"");
      } else {
        absl::StrAppend(out, GoJsonString(s));
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(r->GetMessage(message, field), out);
      break;
    default:
      absl::StrAppend(out, "null");
  }
}

void AppendRepeatedValue(const Message& message, const FieldDescriptor* field, int i,
                         std::string* out) {
  const Reflection* r = message.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, r->GetRepeatedInt32(message, field, i));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, r->GetRepeatedInt64(message, field, i));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, r->GetRepeatedUInt32(message, field, i));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, r->GetRepeatedUInt64(message, field, i));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      absl::StrAppend(out, r->GetRepeatedBool(message, field, i) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      absl::StrAppend(out, r->GetRepeatedEnumValue(message, field, i));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = r->GetRepeatedString(message, field, i);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        absl::StrAppend(out, "\"", absl::Base64Escape(s), "\"");
      } else {
        absl::StrAppend(out, GoJsonString(s));
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(r->GetRepeatedMessage(message, field, i), out);
      break;
    default:
      absl::StrAppend(out, "null");
  }
}

// Whether Go's omitempty keeps the field: a set sub-message always, a
// scalar when not zero, a string or list when not empty.
bool Present(const Message& message, const FieldDescriptor* field) {
  const Reflection* r = message.GetReflection();
  if (field->is_repeated()) return r->FieldSize(message, field) > 0;
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) return r->HasField(message, field);
  return r->HasField(message, field);  // proto3 scalars: present iff not zero
}

void AppendField(const Message& message, const FieldDescriptor* field, std::string* out) {
  const Reflection* r = message.GetReflection();
  absl::StrAppend(out, "\"", field->name(), "\":");
  if (!field->is_repeated()) {
    AppendValue(message, field, out);
    return;
  }
  out->push_back('[');
  for (int i = 0; i < r->FieldSize(message, field); ++i) {
    if (i > 0) out->push_back(',');
    AppendRepeatedValue(message, field, i, out);
  }
  out->push_back(']');
}

// A oneof is a Go interface field holding a wrapper struct; it is never
// omitted (null when unset).
void AppendOneof(const Message& message, const OneofDescriptor* oneof, std::string* out) {
  absl::StrAppend(out, "\"", GoName(oneof->name()), "\":");
  const FieldDescriptor* set = message.GetReflection()->GetOneofFieldDescriptor(message, oneof);
  if (set == nullptr) {
    absl::StrAppend(out, "null");
    return;
  }
  absl::StrAppend(out, "{\"", GoName(set->name()), "\":");
  AppendValue(message, set, out);
  out->push_back('}');
}

void AppendMessage(const Message& message, std::string* out) {
  const Descriptor* d = message.GetDescriptor();
  out->push_back('{');
  bool first = true;
  std::set<const OneofDescriptor*> done;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* field = d->field(i);
    if (const OneofDescriptor* oneof = field->real_containing_oneof(); oneof != nullptr) {
      // The Go struct holds the oneof where its first field is declared.
      if (!done.insert(oneof).second) continue;
      if (!first) out->push_back(',');
      first = false;
      AppendOneof(message, oneof, out);
      continue;
    }
    if (!Present(message, field)) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendField(message, field, out);
  }
  out->push_back('}');
}

// A multi-byte UTF-8 sequence at s[i] as Go's encoder writes it: copied
// when valid, U+FFFD for a bad byte, U+2028/9 escaped. Returns the bytes
// consumed.
size_t AppendMultiByte(absl::string_view s, size_t i, std::string* out) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  uint32_t r = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  bool valid = len > 0 && i + len <= s.size();
  for (int k = 1; valid && k < len; ++k) {
    const unsigned char b = static_cast<unsigned char>(s[i + k]);
    valid = (b & 0xC0) == 0x80;
    r = (r << 6) | (b & 0x3F);
  }
  if (valid) {
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    valid = r >= min && r <= 0x10FFFF && !(r >= 0xD800 && r <= 0xDFFF);
  }
  if (!valid) {
    *out += "\\ufffd";
    return 1;
  }
  if (r == 0x2028 || r == 0x2029) {
    absl::StrAppendFormat(out, "\\u%04x", r);
  } else {
    out->append(s.data() + i, len);
  }
  return len;
}

}  // namespace

std::string GoJsonString(absl::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '<':
        case '>':
        case '&':
          absl::StrAppendFormat(&out, "\\u%04x", c);
          break;
        default:
          if (c < 0x20) {
            absl::StrAppendFormat(&out, "\\u%04x", c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      continue;
    }
    i += AppendMultiByte(s, i, &out);
  }
  out.push_back('"');
  return out;
}

std::string GoJson(const google::protobuf::Message& message) {
  std::string out;
  AppendMessage(message, &out);
  return out;
}

}  // namespace arbiter::cli
