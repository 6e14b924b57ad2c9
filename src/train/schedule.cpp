// HF learning-rate schedule multipliers (see schedule.h for the formulas).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "bertfit/error.h"

namespace bertfit {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "linear") return ScheduleKind::LINEAR;
  if (name == "cosine") return ScheduleKind::COSINE;
  if (name == "constant") return ScheduleKind::CONSTANT;
  if (name == "constant_with_warmup") return ScheduleKind::CONSTANT_WITH_WARMUP;
  throw ConfigError("unknown lr_scheduler_type '" + name +
                    "' (expected linear, cosine, constant or constant_with_warmup)");
}

std::string schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::LINEAR:
      return "linear";
    case ScheduleKind::COSINE:
      return "cosine";
    case ScheduleKind::CONSTANT:
      return "constant";
    case ScheduleKind::CONSTANT_WITH_WARMUP:
      return "constant_with_warmup";
  }
  return "?";
}

int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  if (warmup_steps < 0) throw ConfigError("warmup_steps must not be negative");
  if (!(warmup_ratio >= 0 && warmup_ratio <= 1)) throw ConfigError("warmup_ratio must be in [0, 1]");
  if (warmup_steps > 0) return warmup_steps;
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_ratio));
}

LrSchedule::LrSchedule(ScheduleKind kind, int64_t total_steps, int64_t warmup_steps, double num_cycles)
    : kind_(kind), total_(total_steps), warmup_(warmup_steps), num_cycles_(num_cycles) {
  if (warmup_ < 0) throw ConfigError("warm-up steps must not be negative");
  if ((kind == ScheduleKind::LINEAR || kind == ScheduleKind::COSINE) && total_ < 1)
    throw ConfigError("a decaying lr schedule needs at least one training step");
  if (!(num_cycles_ > 0)) throw ConfigError("num_cycles must be positive");
}

double LrSchedule::multiplier(int64_t step) const {
  // Integer arithmetic in double, as Python's float(a) / float(max(1, b)).
  const double t = static_cast<double>(step), w = static_cast<double>(warmup_),
               T = static_cast<double>(total_);
  if (kind_ == ScheduleKind::CONSTANT) return 1.0;
  if (step < warmup_) return t / std::max(1.0, w);
  switch (kind_) {
    case ScheduleKind::LINEAR:
      return std::max(0.0, (T - t) / std::max(1.0, T - w));
    case ScheduleKind::COSINE: {
      const double progress = (t - w) / std::max(1.0, T - w);
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * num_cycles_ * 2.0 * progress)));
    }
    default:
      return 1.0;  // CONSTANT_WITH_WARMUP after warm-up
  }
}

}  // namespace bertfit
