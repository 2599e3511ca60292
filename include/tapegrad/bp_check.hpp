// check_mlp_bp moved to the nn layer: tapegrad::nn::check_mlp_bp, with its types
// (nn::BPLoss, nn::BPCheckReport, ...), in tapegrad/nn/bp_check.hpp. This header only
// forwards there, for code that includes it by its old name.
#pragma once

#include "tapegrad/nn/bp_check.hpp"
