"""One LoRA fine-tune, start to finish: the entry point `accelerate launch` runs for a trial.

Why our own accelerate loop rather than transformers' Trainer: the parent needs an event at every
optimizer step (loss, learning rate, grad norm, tokens/s), must be able to stop the child between
any two steps, and NaN/OOM/SIGTERM must each end with their own reason; checkpoints must be
written atomically and resume bit-for-bit. Trainer can be bent to each of these with callbacks,
but a forty-line loop does all of them plainly and keeps the hot path as lean as a bare peft loop.

Reads top to bottom: config → data → model → LoRA → base eval → train (eval, checkpoints) →
samples → adapter. Exit codes are in `harness.events.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.adapter import CONFIG_FILE, save_adapter
from harness.config import TrainConfig, from_mapping
from harness.events import EXIT_CODES, EventWriter, events_path


class Stop(Exception):
    """Ends the trial with a reason (nan, oom, killed) and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one LoRA fine-tune (launched by harness)")
    parser.add_argument("output_dir", help="holds train_config.json; receives everything else")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    events = EventWriter(os.environ.get("HARNESS_EVENTS") or events_path(out))
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        config = from_mapping(TrainConfig, json.loads((out / CONFIG_FILE).read_text()))
        run(config, out, events, resume=args.resume)
    except Stop as stop:
        events.emit("failed", reason=stop.reason, message=str(stop))
        return EXIT_CODES[stop.reason]
    except Exception as err:  # every other failure is a crash, with its traceback
        reason = "oom" if _is_oom(err) else "crash"
        message = _oom_message(err) if reason == "oom" else f"{type(err).__name__}: {err}"
        events.emit("failed", reason=reason, message=message, traceback=traceback.format_exc())
        traceback.print_exc()
        return EXIT_CODES[reason]
    finally:
        events.close()
    return 0


_stop_requested = False


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stop_requested
    _stop_requested = True


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError | MemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


def _oom_message(err: BaseException) -> str:
    return (f"out of memory ({type(err).__name__}: {err}). Lower training.micro_batch_size or "
            "data.cutoff_len, use quantization 4bit, or turn on gradient_checkpointing")


def run(config: TrainConfig, out: Path, events: EventWriter, *, resume: bool) -> None:
    import torch
    from accelerate import Accelerator

    from harness.checkpoint import checkpoints, load_checkpoint, save_checkpoint

    seed_everything(config.training.seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    data = prepare_data(config)
    tokenizer, train, evals = data.tokenizer, data.train, data.evals
    model = build_model(config)
    optimizer, scheduler, total_steps = build_optimizer(model, config, len(train))
    model, optimizer = accelerator.prepare(model, optimizer)
    pad = tokenizer.pad_token_id
    events.emit("started", pid=os.getpid(), total_steps=total_steps, train_examples=len(train),
                eval_examples=len(evals), fingerprint=data.fingerprint,
                eval_fingerprint=data.eval_fingerprint, device=str(accelerator.device),
                trainable_parameters=sum(p.numel() for p in model.parameters()
                                         if p.requires_grad))
    base_loss = base_eval(config, model, data, accelerator, events)

    step, progress = 0, {"epoch": 0, "batch": 0}
    found = checkpoints(out) if resume else []
    if found:
        state = load_checkpoint(found[-1], model=accelerator.unwrap_model(model),
                                optimizer=optimizer, scheduler=scheduler)
        step, progress = state["step"], state["progress"]
        events.emit("resumed", step=step, checkpoint=str(found[-1]))

    def evaluate_now(at_step: int) -> None:
        from harness.evaluation import eval_loss, perplexity

        loss = eval_loss(model, evals, batch_size=config.training.micro_batch_size,
                         pad_id=pad, device=accelerator.device)
        events.emit("eval", step=at_step, loss=loss, perplexity=perplexity(loss),
                    perplexity_ratio_to_base=perplexity(loss) / perplexity(base_loss))

    train_loop(config, model, optimizer, scheduler, accelerator, train, pad, events,
               step=step, progress=progress, total_steps=total_steps, out=out,
               evaluate_now=evaluate_now, save=save_checkpoint)
    evaluate_now(total_steps)
    write_samples(config, model, data, accelerator, out, events)
    from harness.models import resolve_model

    adapter_dir = save_adapter(config, accelerator.unwrap_model(model), tokenizer, out,
                               base_path=resolve_model(config.model))
    events.emit("finished", adapter_dir=str(adapter_dir), peak_memory_mb=peak_memory_mb())


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@dataclass
class Prepared:
    """The trial's data, encoded with the base model's tokenizer."""

    tokenizer: Any
    renderer: Any
    train: list[Any]
    evals: list[Any]
    eval_records: list[Any]
    fingerprint: str
    eval_fingerprint: str


def prepare_data(config: TrainConfig) -> Prepared:
    from harness.data.encode import encode_all
    from harness.data.load import load_dataset
    from harness.data.records import fingerprint
    from harness.data.render import ChatRenderer
    from harness.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(config.model))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = load_dataset(config.data, tokenizer=tokenizer)
    data.require_usable(allow_defects=config.data.on_invalid == "skip")
    renderer = ChatRenderer(tokenizer)
    kw = {"cutoff_len": config.data.cutoff_len, "train_on": config.data.train_on}
    train, _ = encode_all(data.split.train, tokenizer, renderer, **kw)
    evals, _ = encode_all(data.split.eval, tokenizer, renderer, **kw)
    if not train:
        raise RuntimeError("no training examples remain after encoding; see harness data check")
    if not evals:
        raise RuntimeError("the eval split is empty; raise data.eval_fraction or add documents")
    return Prepared(tokenizer, renderer, [e for _, e in train], [e for _, e in evals],
                    [r for r, _ in evals], data.fingerprint, fingerprint(data.split.eval))


def build_model(config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from harness.models import load_model

    model = load_model(config.model, config.quantization)
    if config.quantization.mode != "none":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing)
    elif config.training.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = config.lora
    return get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias=lora.bias, task_type="CAUSAL_LM"))


def build_optimizer(model: Any, config: TrainConfig, n_train: int) -> tuple[Any, Any, int]:
    import torch
    from transformers import get_scheduler

    from harness.batching import batches_per_epoch

    t = config.training
    per_epoch = batches_per_epoch(n_train, t.micro_batch_size)
    total = t.max_steps if t.max_steps > 0 else math.ceil(
        math.ceil(t.epochs * per_epoch) / t.gradient_accumulation)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    name = "constant_with_warmup" if t.scheduler == "constant" else t.scheduler
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=t.warmup_steps,
                              num_training_steps=total)
    return optimizer, scheduler, max(1, total)


def base_eval(config: TrainConfig, model: Any, data: Prepared, accelerator: Any,
              events: EventWriter) -> float:
    from harness.evaluation import base_cache_path, cached_base_loss, eval_loss, perplexity
    from harness.models import harness_home

    path = base_cache_path(harness_home(), model=config.model,
                           quantization=asdict(config.quantization),
                           eval_fingerprint=data.eval_fingerprint,
                           cutoff_len=config.data.cutoff_len, train_on=config.data.train_on)

    def compute() -> float:
        with accelerator.unwrap_model(model).disable_adapter():
            return eval_loss(model, data.evals, batch_size=config.training.micro_batch_size,
                             pad_id=data.tokenizer.pad_token_id, device=accelerator.device)

    loss, cached = cached_base_loss(path, compute)
    events.emit("base_eval", loss=loss, perplexity=perplexity(loss), cached=cached)
    return loss


def train_loop(config: TrainConfig, model: Any, optimizer: Any, scheduler: Any,
               accelerator: Any, train: list[Any], pad: int, events: EventWriter, *,
               step: int, progress: dict[str, int], total_steps: int, out: Path,
               evaluate_now: Any, save: Any) -> None:
    import torch

    from harness.batching import batches_per_epoch, collate, iterate

    t = config.training
    fault = _fault()
    per_epoch = batches_per_epoch(len(train), t.micro_batch_size)
    epochs = math.ceil(total_steps * t.gradient_accumulation / per_epoch) + 1
    batches = iterate(train, batch_size=t.micro_batch_size, seed=t.seed,
                      start_epoch=progress["epoch"], skip=progress["batch"], epochs=epochs)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]  # once, not every step
    clip = t.max_grad_norm if t.max_grad_norm > 0 else float("inf")
    epoch, index = progress["epoch"], progress["batch"]
    while step < total_steps:
        started, tokens, losses = time.perf_counter(), 0, []
        for _ in range(t.gradient_accumulation):
            epoch_now, batch = next(batches)
            index = index + 1 if epoch_now == epoch else 1
            epoch = epoch_now
            cpu = collate(batch, pad)
            tokens += int(cpu["attention_mask"].sum())  # on the host: no device sync
            loss = model(**{k: v.to(accelerator.device) for k, v in cpu.items()}).loss
            if fault == ("nan", step + 1):
                loss = loss * float("nan")
            accelerator.backward(loss / t.gradient_accumulation)
            losses.append(loss.detach())
        mean_loss = float(torch.stack(losses).mean())  # the step's one sync, as any loop logs
        if not math.isfinite(mean_loss):
            raise Stop("nan", f"loss became {mean_loss} at step {step + 1}; lower "
                       "training.learning_rate or set max_grad_norm")
        grad_norm = accelerator.clip_grad_norm_(trainable, clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        _inject(fault, step)
        seconds = time.perf_counter() - started
        if step % t.logging_steps == 0 or step == total_steps:
            events.emit("step", step=step, total_steps=total_steps, loss=mean_loss,
                        learning_rate=scheduler.get_last_lr()[0], grad_norm=float(grad_norm),
                        tokens=tokens, tokens_per_second=tokens / seconds if seconds else 0.0,
                        epoch=epoch + index / per_epoch)
        if _stop_requested:
            raise Stop("killed", f"stopped by SIGTERM after step {step}")
        if t.save_steps and step % t.save_steps == 0 and step < total_steps:
            path = save(out, step=step, model=accelerator.unwrap_model(model),
                        optimizer=optimizer, scheduler=scheduler,
                        progress={"epoch": epoch, "batch": index})
            events.emit("checkpoint", step=step, path=str(path))
        if t.eval_steps and step % t.eval_steps == 0 and step < total_steps:
            evaluate_now(step)


def _fault() -> tuple[str, int] | None:
    """Fault injection for tests and drills: HARNESS_FAULT=nan@3, oom@2 or crash@1."""
    spec = os.environ.get("HARNESS_FAULT", "")
    kind, _, at = spec.partition("@")
    return (kind, int(at)) if kind in ("nan", "oom", "crash") and at.isdigit() else None


def _inject(fault: tuple[str, int] | None, step: int) -> None:
    if fault == ("oom", step):
        raise MemoryError("injected by HARNESS_FAULT")
    if fault == ("crash", step):
        raise RuntimeError("injected crash (HARNESS_FAULT)")


def write_samples(config: TrainConfig, model: Any, data: Prepared, accelerator: Any, out: Path,
                  events: EventWriter) -> None:
    from harness.samples import comparison_rows, generate, sample_prompts, write_reports

    settings = config.samples
    prompts = sample_prompts(data.eval_records, data.renderer, settings.count)
    if not prompts:
        return
    unwrapped = accelerator.unwrap_model(model)
    kw = {"chat": bool(data.eval_records[0].messages), "device": accelerator.device}
    with unwrapped.disable_adapter():
        base = generate(unwrapped, data.tokenizer, prompts, settings, **kw)
    tuned = generate(unwrapped, data.tokenizer, prompts, settings, **kw)
    rows = comparison_rows(prompts, base, tuned)
    write_reports(rows, out / "samples", settings)
    events.emit("samples", rows=rows, dir=str(out / "samples"))


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
