// tapegrad: reverse-mode automatic differentiation on xtensor. One include for all of it.
#pragma once

#include "tapegrad/check.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"
