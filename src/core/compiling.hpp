// Whether compile() is recording a function on the calling thread: for the layers whose
// eager behaviour a replay would freeze (a dropout mask, batch norm's running statistics),
// so that they refuse to be compiled instead of being silently wrong.
#pragma once

namespace tapegrad::detail {

/// True on the calling thread while compile() (or compile_sgd_step, compile_value_and_grad)
/// runs the function it records.
bool compiling();

}  // namespace tapegrad::detail
