// Tables as etcdctl prints them with `-w table`: the layout of the Go
// tablewriter package etcdctl 3.4 uses, with borders, centred upper-case
// headings, right-aligned cells and its word wrapping of cells wider than 30
// columns (a cell is wrapped when it is appended, at the column width known
// then, exactly as tablewriter does).
//
// Thread safety: pure functions.
#ifndef ARBITER_CLI_TABLE_H_
#define ARBITER_CLI_TABLE_H_

#include <string>
#include <vector>

namespace arbiter::cli {

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_TABLE_H_
