#!/usr/bin/python3
"""Golden learning rates for src/train/schedule.cpp: torch.optim.lr_scheduler.LambdaLR driven with the lambda
functions of transformers' optimization.py (copied formulas; transformers itself is not installable here),
stepped the way the HF Trainer steps it (optimizer.step() then scheduler.step()), recording the lr each
optimizer step used.

    /usr/bin/python3 tools/data/gen_schedule_golden.py > tests/fixtures/data/schedule_golden.json
"""
import json
import math
import sys
from functools import partial

import torch


def linear(current_step, *, num_warmup_steps, num_training_steps):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def cosine(current_step, *, num_warmup_steps, num_training_steps, num_cycles):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def constant(_):
    return 1


def constant_with_warmup(current_step, *, num_warmup_steps):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1.0, num_warmup_steps))
    return 1.0


def warmup_steps(steps, ratio, total):  # TrainingArguments.get_warmup_steps
    return steps if steps > 0 else math.ceil(total * ratio)


def run(kind, total, w_steps, w_ratio, base_lr, num_cycles=0.5, extra=5):
    w = warmup_steps(w_steps, w_ratio, total)
    lam = {
        "linear": partial(linear, num_warmup_steps=w, num_training_steps=total),
        "cosine": partial(cosine, num_warmup_steps=w, num_training_steps=total, num_cycles=num_cycles),
        "constant": constant,
        "constant_with_warmup": partial(constant_with_warmup, num_warmup_steps=w),
    }[kind]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    lrs = []
    for _ in range(total + extra):  # a few steps past the end: the schedules must stay at their floor
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {"kind": kind, "total_steps": total, "warmup_steps_arg": w_steps, "warmup_ratio": w_ratio,
            "warmup_steps": w, "num_cycles": num_cycles, "base_lr": base_lr, "lrs": lrs}


def main():
    cases = [
        run("linear", 20, 0, 0.1, 2e-5),
        run("linear", 37, 0, 0.06, 5e-5),  # ceil(2.22) = 3
        run("linear", 10, 4, 0.5, 1e-4),   # steps win over the ratio
        run("linear", 5, 0, 0.0, 1e-3),
        run("linear", 3, 8, 0.0, 1e-3),    # warm-up longer than training
        run("cosine", 20, 0, 0.1, 2e-5),
        run("cosine", 33, 5, 0.0, 3e-5),
        run("cosine", 24, 2, 0.0, 1e-4, num_cycles=1.5),
        run("constant", 7, 0, 0.2, 2e-5),
        run("constant_with_warmup", 12, 0, 0.25, 2e-5),
        run("constant_with_warmup", 9, 1, 0.0, 1e-4),
    ]
    json.dump({"generator": "tools/data/gen_schedule_golden.py", "torch": torch.__version__, "cases": cases},
              sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
