#include "cli/table.h"

#include <algorithm>
#include <climits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace arbiter::cli {
namespace {

constexpr int kMaxWidth = 30;

// Display width: one column per code point (etcdctl's cells are ASCII).
int Width(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Splits words into lines of about `limit` columns with the least
// raggedness (the sum of squared shortfalls); a line longer than the limit
// costs a large penalty. This is the dynamic program tablewriter uses.
std::vector<std::string> WrapWords(const std::vector<std::string>& words, int limit) {
  const int n = static_cast<int>(words.size());
  constexpr int kPenalty = 100000;
  // length(i, j): the width of words i..j joined by single spaces.
  std::vector<int> prefix(n + 1, 0);
  for (int i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + Width(words[i]);
  const auto length = [&](int i, int j) { return prefix[j + 1] - prefix[i] + (j - i); };
  std::vector<int> cost(n, INT_MAX), next(n, n);
  for (int i = n - 1; i >= 0; --i) {
    if (length(i, n - 1) <= limit) {
      cost[i] = 0;
      next[i] = n;
      continue;
    }
    for (int j = i + 1; j < n; ++j) {
      const int d = limit - length(i, j - 1);
      int c = d * d + cost[j];
      if (length(i, j - 1) > limit) c += kPenalty;
      if (c < cost[i]) {
        cost[i] = c;
        next[i] = j;
      }
    }
  }
  std::vector<std::string> lines;
  for (int i = 0; i < n; i = next[i]) {
    lines.push_back(absl::StrJoin(words.begin() + i, words.begin() + next[i], " "));
  }
  return lines;
}

std::vector<std::string> WrapCell(const std::string& cell, int limit) {
  std::vector<std::string> words = absl::StrSplit(absl::StrReplaceAll(cell, {{"\n", " "}}), ' ');
  for (const std::string& w : words) limit = std::max(limit, static_cast<int>(w.size()));
  return WrapWords(words, limit);
}

std::string Heading(const std::string& h) {
  std::string t = absl::StrReplaceAll(h, {{"_", " "}, {".", " "}});
  return absl::AsciiStrToUpper(absl::StripAsciiWhitespace(t));
}

std::string PadLeft(const std::string& s, int width) {
  const int gap = width - Width(s);
  return gap > 0 ? std::string(gap, ' ') + s : s;
}

std::string Center(const std::string& s, int width) {
  const int gap = width - Width(s);
  if (gap <= 0) return s;
  const int left = gap / 2;
  return std::string(left, ' ') + s + std::string(gap - left, ' ');
}

}  // namespace

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::map<int, int> widths;
  const auto widen = [&](int col, int w) {
    auto it = widths.find(col);
    if (it == widths.end() || it->second < w || it->second == 0) widths[col] = w;
  };
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    widen(i, std::min(Width(header[i]), kMaxWidth));
  }
  // Each row as lines per cell, wrapped at the width known when appended.
  std::vector<std::vector<std::vector<std::string>>> lines;
  std::vector<int> heights;
  for (const std::vector<std::string>& row : rows) {
    std::vector<std::vector<std::string>> cells;
    int height = 0;
    for (int i = 0; i < static_cast<int>(row.size()); ++i) {
      widen(i, std::min(Width(row[i]), kMaxWidth));
      std::vector<std::string> wrapped = WrapCell(row[i], widths[i]);
      int longest = 0;
      for (const std::string& l : wrapped) longest = std::max(longest, Width(l));
      if (longest > widths[i]) widths[i] = longest;
      height = std::max(height, static_cast<int>(wrapped.size()));
      cells.push_back(std::move(wrapped));
    }
    lines.push_back(std::move(cells));
    heights.push_back(height);
  }
  std::string out;
  const auto rule = [&] {
    out += "+";
    for (const auto& [col, w] : widths) out += std::string(w + 2, '-') + "+";
    out += "\n";
  };
  rule();
  if (!header.empty()) {
    out += "|";
    for (const auto& [col, w] : widths) {
      out += " " + Center(Heading(header[col]), w) + " |";
    }
    out += "\n";
    rule();
  }
  for (size_t r = 0; r < lines.size(); ++r) {
    std::vector<std::vector<std::string>>& cells = lines[r];
    // Shorter cells are filled with two spaces per missing line, as
    // tablewriter does.
    for (auto& cell : cells) cell.resize(heights[r], "  ");
    for (int x = 0; x < heights[r]; ++x) {
      for (size_t y = 0; y < cells.size(); ++y) {
        out += "| " + PadLeft(cells[y][x], widths[static_cast<int>(y)]) + " ";
      }
      out += "|\n";
    }
  }
  rule();
  return out;
}

}  // namespace arbiter::cli
