// The list of built-in ops (filled by each op block's TAPEGRAD_REGISTER_OP, see ops/op.hpp),
// in a header of its own so that a test can read it without the ops' machinery.
#pragma once

#include <string>
#include <vector>

namespace tapegrad::detail {

/// Adds `name` to op_names(); returns true (for a static initialiser).
bool register_op(const char* name);
/// The names of the built-in ops, each once, sorted. The per-op test tables are checked
/// against this list. An op registers when its file's static initialisers run, so with the
/// static libraries the list holds the ops of the object files a program links: all of them
/// in the unit tests, which call every op (test_op_table.cpp checks the list against the
/// blocks in src/).
std::vector<std::string> op_names();

}  // namespace tapegrad::detail
