// Finds which file of a LevelDB database is damaged. LevelDB detects a
// checksum mismatch but its Status often says only "checksum mismatch",
// without the file; an operator deciding whether to rebuild a member needs
// the file. CheckLevelDbFiles re-reads every write-ahead log, MANIFEST and
// table file of the database and verifies each record's or block's CRC.
//
// Log and MANIFEST files use LevelDB's documented log format
// (doc/log_format.md): 32 KiB blocks of records, each with a 7-byte header
// (masked CRC32C of type + payload, 16-bit length, type). An incomplete
// record at the very end of a file is a torn tail (a write that was never
// acknowledged), which LevelDB drops on recovery, so it is not reported.
// Table files are opened with leveldb::Table and iterated with checksums
// verified.
//
// Thread safety: a pure function of the files; call it while the database
// is closed (or at least not being written).
#ifndef ARBITER_KVSTORE_LEVELDB_CHECK_H_
#define ARBITER_KVSTORE_LEVELDB_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace leveldb {
class Env;
}  // namespace leveldb

namespace arbiter::kv {

// One line per damaged file: "<path>: <what is wrong>". Empty if every file
// checks out (or none could be read).
std::vector<std::string> CheckLevelDbFiles(leveldb::Env* env, const std::string& dir);

// CRC32C (Castagnoli) of data, continuing from crc (0 to start), and
// LevelDB's masking of stored CRCs. Exposed for tests.
uint32_t Crc32c(uint32_t crc, absl::string_view data);
uint32_t MaskCrc(uint32_t crc);

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_LEVELDB_CHECK_H_
