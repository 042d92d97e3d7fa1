"""The TRL sides of bench/throughput.py: SFTTrainer padded, padding-free and packed, each in a
process of its own (this file run as a script), on the harness's own encoded examples, timed
and counted as the harness's sides are. Needs the bench extra (trl)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from itertools import islice
from typing import Any

from common import tokens_per_second

from harness.config import TrainConfig, from_mapping

TRL_SIDES: dict[str, dict[str, Any]] = {
    "trl-padded": {},
    "trl-padding-free": {"padding_free": True},
    "trl-packed": {"packing": True, "packing_strategy": "bfd"},
}


def trl_side(side: str, config: TrainConfig, *, warmup: int,
             bf16_adapter: bool) -> dict[str, Any]:
    """`trl_train` in a fresh interpreter (this file run as a script), with the threads a
    harness trial gets."""
    from harness.launch.command import cpu_threads

    cmd = [sys.executable, __file__, side, json.dumps(asdict(config)), "--warmup", str(warmup)]
    if bf16_adapter:
        cmd.append("--bf16-adapter")
    env = {**os.environ, "OMP_NUM_THREADS": str(cpu_threads(1))}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise SystemExit(f"{side} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class CountingCollator:
    """TRL's collator, noting each batch's example tokens, positions and examples on the host.
    Batches are collated in training order (the loader may run one ahead), so batch k is
    step k's with one micro-batch per step."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.real: list[int] = []
        self.computed: list[int] = []
        self.examples: list[int] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        self.real.append(sum(len(f["input_ids"]) for f in features))
        self.computed.append(batch["input_ids"].numel())
        # a packed row lists the lengths of the examples it holds
        self.examples.append(sum(len(f["seq_lengths"]) if "seq_lengths" in f else 1
                                 for f in features))
        return batch


def step_clock() -> Any:
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """When each optimizer step ended."""

        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.time())

    return StepClock()


def harness_order(train: list[Any], config: TrainConfig) -> list[Any]:
    """The examples the harness's padded trial trains on, in its order."""
    from harness.trial.batching import iterate

    t = config.training
    batches = iterate(train, batch_size=t.micro_batch_size, seed=t.seed, start_epoch=0, skip=0,
                      epochs=10_000, batching="padded")
    micro_steps = t.max_steps * t.gradient_accumulation
    return [e for _, batch in islice(batches, micro_steps) for e in batch]


def as_dataset(examples: list[Any]) -> Any:
    from datasets import Dataset

    from harness.data.encode import IGNORE_INDEX

    return Dataset.from_dict({
        "input_ids": [e.input_ids for e in examples],
        "completion_mask": [[int(x != IGNORE_INDEX) for x in e.labels] for e in examples]})


def sft_config(side: str, config: TrainConfig, out: str) -> Any:
    import torch
    from trl import SFTConfig

    from harness.trial.setup import REENTRANT_FREE

    t, options = config.training, TRL_SIDES[side]
    # padding-free without packing refuses a max_length (it would not enforce it); the
    # harness's examples are cut to cutoff_len already
    unpacked_free = options.get("padding_free") and not options.get("packing")
    return SFTConfig(
        output_dir=out, per_device_train_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation, num_train_epochs=1,
        learning_rate=t.learning_rate, warmup_steps=t.warmup_steps,
        lr_scheduler_type="constant_with_warmup" if t.scheduler == "constant" else t.scheduler,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim="adamw_torch",
        seed=t.seed, gradient_checkpointing=t.gradient_checkpointing,
        gradient_checkpointing_kwargs=dict(REENTRANT_FREE),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        max_length=None if unpacked_free else config.data.cutoff_len,
        # without it TRL ignores completion_mask on a pre-tokenized dataset (it decides from
        # prompt/completion columns) and trains on the prompts too
        completion_only_loss=True, train_sampling_strategy="sequential",
        logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none",
        disable_tqdm=True, **options)


def check_prepared(trainer: Any, examples: list[Any], *, packed: bool) -> None:
    """TRL's prepared dataset holds exactly the harness's examples and labels."""
    prepared = trainer.train_dataset
    if packed:
        same = (sum(len(r) for r in prepared["seq_lengths"]) == len(examples)
                and sum(map(len, prepared["input_ids"])) == sum(len(e.input_ids)
                                                                for e in examples))
    else:
        same = prepared["labels"] == [e.labels for e in examples]
    if not same:
        raise SystemExit("TRL's prepared dataset differs from the harness's examples")


def adapter_to_fp32(model: Any) -> None:
    import torch

    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()


def trl_train(side: str, config: TrainConfig, *, warmup: int,
              bf16_adapter: bool) -> dict[str, Any]:
    from trl import SFTTrainer

    from harness.trial.evaluation import eval_loss
    from harness.trial.recipe import peak_memory_mb
    from harness.trial.setup import build_model, prepare_data, seed_everything

    seed_everything(config.training.seed)  # as a trial does: the same adapter initialisation
    data = prepare_data(config)
    examples = harness_order(data.train, config)
    model = build_model(config)
    clock = step_clock()
    with tempfile.TemporaryDirectory() as out:
        trainer = SFTTrainer(model=model, args=sft_config(side, config, out),
                             train_dataset=as_dataset(examples), processing_class=data.tokenizer,
                             callbacks=[clock])
        check_prepared(trainer, examples, packed="packing" in TRL_SIDES[side])
        if not bf16_adapter:
            adapter_to_fp32(trainer.model)
        # padding-free refuses a collator passed in, so the wrapper goes on afterwards
        counter = CountingCollator(trainer.data_collator)
        trainer.data_collator = counter
        trainer.train()
        loss = eval_loss(trainer.accelerator.unwrap_model(trainer.model), data.evals,
                         batch_size=config.training.micro_batch_size,
                         pad_id=data.tokenizer.pad_token_id, device=trainer.args.device)
    n = len(clock.ends)
    return {"tokens_per_second": tokens_per_second(clock.ends, counter.real[:n], warmup),
            "padding_efficiency": statistics.fmean(
                r / c for r, c in zip(counter.real[:n], counter.computed[:n], strict=True)),
            "peak_memory_mb": peak_memory_mb(), "eval_loss": loss,
            "examples": sum(counter.examples[:n]), "steps": n,
            "eval_examples": len(data.evals), "eval_fingerprint": data.eval_fingerprint}


def main() -> None:
    parser = argparse.ArgumentParser(description="one TRL side of bench/throughput.py")
    parser.add_argument("side", choices=list(TRL_SIDES))
    parser.add_argument("config", help="the side's train config, as JSON")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--bf16-adapter", action="store_true")
    args = parser.parse_args()
    config = from_mapping(TrainConfig, json.loads(args.config))
    print(json.dumps(trl_train(args.side, config, warmup=args.warmup,
                               bf16_adapter=args.bf16_adapter)), flush=True)


if __name__ == "__main__":
    main()
