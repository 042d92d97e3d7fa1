"""One LoRA fine-tune, start to finish: the entry point `accelerate launch` runs for a trial.

Why our own accelerate loop rather than transformers' Trainer: the parent needs an event at every
optimizer step (loss, learning rate, grad norm, tokens/s), must be able to stop the child between
any two steps, and NaN/OOM/SIGTERM must each end with their own reason; checkpoints must be
written atomically and resume bit-for-bit. Trainer can be bent to each of these with callbacks,
but a forty-line loop does all of them plainly and keeps the hot path as lean as a bare peft loop.

Reads top to bottom: config → data → model → LoRA → base eval → train (eval, checkpoints) →
samples → adapter. Exit codes are in `harness.events.EXIT_CODES`. With `training.num_processes`
above 1 the same loop runs data-parallel (see `harness.trial.parallel`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.config import TrainConfig, from_mapping
from harness.errors import disk_full, is_disk_full
from harness.events import EXIT_CODES, EventWriter, events_path
from harness.trial.adapter import save_adapter
from harness.trial.parallel import (
    RankEvents,
    events_for_rank,
    launched_rank,
    same_everywhere,
    sum_across,
)
from harness.trialdir import CONFIG_FILE, SAMPLES_DIR, put_in_place, scratch

Events = EventWriter | RankEvents


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
    events = events_for_rank(EventWriter(os.environ.get("HARNESS_EVENTS") or events_path(out)),
                             launched_rank())
    signal.signal(signal.SIGTERM, _on_sigterm)
    _stop_when_parent_is_gone(os.environ.get("HARNESS_PARENT", ""))
    try:
        config = from_mapping(TrainConfig, json.loads((out / CONFIG_FILE).read_text()))
        run(config, out, events, resume=args.resume)
    except Stop as stop:
        _report(events, "failed", reason=stop.reason, message=str(stop))
        return EXIT_CODES[stop.reason]
    except Exception as err:  # every other failure is a crash, with its traceback
        failure = _failure(err, out)
        _report(events, "failed", **failure, traceback=traceback.format_exc())
        with contextlib.suppress(OSError):  # trial.log may sit on the full disk
            traceback.print_exc()
        return EXIT_CODES[failure["reason"]]
    finally:
        with contextlib.suppress(OSError):
            events.close()
    return 0


def _failure(err: BaseException, out: Path) -> dict[str, str]:
    """The `failed` event's reason and message (and for a full disk, where) for a failure
    that is not a `Stop`."""
    if is_disk_full(err):
        full = disk_full(err, out)
        return {"reason": "disk_full", "message": str(full), "where": full.where}
    if _is_oom(err):
        return {"reason": "oom", "message": _oom_message(err)}
    return {"reason": "crash", "message": f"{type(err).__name__}: {err}"}


def _report(events: Events, event: str, **fields: Any) -> None:
    """Emit a last event if the disk lets us: the parent tells a full disk apart anyway."""
    with contextlib.suppress(OSError):
        events.emit(event, **fields)


_stop_requested = False
_stop_cause = "SIGTERM"


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stop_requested
    _stop_requested = True


ORPHAN_GRACE_SECONDS = 20.0
"""How long a trial whose parent died may take to stop after its current step (as long as the
runner gives a trial it stops) before it exits wherever it is."""


def _stop_when_parent_is_gone(parent: str) -> None:
    """A trial whose sweep or `harness train` died (SIGKILL, a crash) stops as if SIGTERMed:
    no one would record what it trains, and the resumed sweep runs it again."""
    from harness.procs import watch_parent

    pid, _, since = parent.partition(":")
    if not pid.isdigit():
        return

    def on_gone() -> None:
        global _stop_cause
        _stop_cause = f"its parent process {pid} ending"
        _on_sigterm(signal.SIGTERM, None)
        timer = threading.Timer(ORPHAN_GRACE_SECONDS, os._exit, args=(EXIT_CODES["killed"],))
        timer.daemon = True
        timer.start()

    watch_parent(int(pid), since=int(since) if since.isdigit() else None, on_gone=on_gone)


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError | MemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


def _oom_message(err: BaseException) -> str:
    return (f"out of memory ({type(err).__name__}: {err}). Lower training.micro_batch_size or "
            "data.cutoff_len, use quantization 4bit, or turn on gradient_checkpointing")


def run(config: TrainConfig, out: Path, events: Events, *, resume: bool) -> None:
    import torch
    from accelerate import Accelerator

    from harness.trial.checkpoint import save_checkpoint

    seed_everything(config.training.seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    data = prepare_data(config)
    tokenizer, train, evals = data.tokenizer, data.train, data.evals
    model = build_model(config)
    optimizer, scheduler, total_steps = build_optimizer(
        model, config, len(train), processes=accelerator.num_processes)
    model, optimizer = accelerator.prepare(model, optimizer)
    pad = tokenizer.pad_token_id
    events.emit("started", pid=os.getpid(), total_steps=total_steps, train_examples=len(train),
                eval_examples=len(evals), fingerprint=data.fingerprint,
                eval_fingerprint=data.eval_fingerprint, device=str(accelerator.device),
                processes=accelerator.num_processes,
                trainable_parameters=sum(p.numel() for p in model.parameters()
                                         if p.requires_grad))
    base_loss = base_eval(config, model, data, accelerator, events)

    step, progress = 0, {"epoch": 0, "batch": 0}
    if resume:
        step, progress = resume_from(out, model=accelerator.unwrap_model(model),
                                     optimizer=optimizer, scheduler=scheduler, events=events)

    def evaluate_now(at_step: int) -> None:
        from harness.trial.evaluation import perplexity

        loss = shared_eval_loss(accelerator, model, evals, config, pad)
        events.emit("eval", step=at_step, loss=loss, perplexity=perplexity(loss),
                    perplexity_ratio_to_base=perplexity(loss) / perplexity(base_loss))

    train_loop(config, model, optimizer, scheduler, accelerator, train, pad, events,
               step=step, progress=progress, total_steps=total_steps, out=out,
               evaluate_now=evaluate_now, save=save_checkpoint)
    evaluate_now(total_steps)
    if not accelerator.is_main_process:
        return  # the main process writes samples and the adapter
    write_samples(config, model, data, accelerator, out, events)
    from harness.models import resolve_model

    adapter_dir = save_adapter(config, accelerator.unwrap_model(model), tokenizer, out,
                               base_path=resolve_model(config.model))
    events.emit("finished", adapter_dir=str(adapter_dir), peak_memory_mb=peak_memory_mb())


def resume_from(out: Path, *, model: Any, optimizer: Any, scheduler: Any,
                events: Events) -> tuple[int, dict[str, int]]:
    """Restore the newest intact checkpoint in ``out``: a damaged one is named (a
    `checkpoint_damaged` event) and the one before it tried; (step, progress) to go on from,
    step 0 when none is intact."""
    from harness.trial.checkpoint import DamagedCheckpoint, checkpoints, load_checkpoint

    for path in reversed(checkpoints(out)):
        try:
            state = load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
        except DamagedCheckpoint as err:
            events.emit("checkpoint_damaged", checkpoint=str(path), message=str(err))
            continue
        events.emit("resumed", step=state["step"], checkpoint=str(path))
        return state["step"], state["progress"]
    return 0, {"epoch": 0, "batch": 0}


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
    from harness.data.ready import ready_for_training
    from harness.data.records import fingerprint
    from harness.models import training_tokenizer

    tokenizer = training_tokenizer(config.model)
    ready = ready_for_training(config.data, tokenizer)
    return Prepared(tokenizer, ready.renderer, [e for _, e in ready.train],
                    [e for _, e in ready.evals], [r for r, _ in ready.evals],
                    ready.dataset.fingerprint, fingerprint(ready.dataset.split.eval))


# Non-reentrant checkpointing: the reentrant kind breaks DistributedDataParallel's gradient hooks.
REENTRANT_FREE = {"use_reentrant": False}


def build_model(config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from harness.models import load_model

    model = load_model(config.model, config.quantization)
    if config.quantization.mode != "none":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing,
            gradient_checkpointing_kwargs=REENTRANT_FREE)
    elif config.training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=REENTRANT_FREE)
        model.enable_input_require_grads()
    lora = config.lora
    return get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias=lora.bias, task_type="CAUSAL_LM"))


def build_optimizer(model: Any, config: TrainConfig, n_train: int, *,
                    processes: int = 1) -> tuple[Any, Any, int]:
    import torch
    from transformers import get_scheduler

    from harness.trial.batching import batches_per_epoch

    t = config.training
    per_epoch = batches_per_epoch(n_train, t.micro_batch_size)
    total = t.max_steps if t.max_steps > 0 else math.ceil(
        math.ceil(t.epochs * per_epoch) / (t.gradient_accumulation * processes))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    name = "constant_with_warmup" if t.scheduler == "constant" else t.scheduler
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=t.warmup_steps,
                              num_training_steps=total)
    return optimizer, scheduler, max(1, total)


def base_eval(config: TrainConfig, model: Any, data: Prepared, accelerator: Any,
              events: Events) -> float:
    """The base model's eval loss: cached per model, quantization and eval split. The main
    process decides whether the cache serves, so all processes compute it or none does."""
    from harness.models import harness_home
    from harness.trial.evaluation import (
        base_cache_path,
        perplexity,
        read_base_loss,
        write_base_loss,
    )

    path = base_cache_path(harness_home(), model=config.model,
                           quantization=asdict(config.quantization),
                           eval_fingerprint=data.eval_fingerprint,
                           cutoff_len=config.data.cutoff_len, train_on=config.data.train_on)
    loss = same_everywhere(accelerator, read_base_loss(path)
                           if accelerator.is_main_process else None)
    cached = loss is not None
    if loss is None:
        with accelerator.unwrap_model(model).disable_adapter():
            loss = shared_eval_loss(accelerator, model, data.evals, config,
                                    data.tokenizer.pad_token_id)
        if accelerator.is_main_process:
            write_base_loss(path, loss)
    events.emit("base_eval", loss=loss, perplexity=perplexity(loss), cached=cached)
    return loss


def shared_eval_loss(accelerator: Any, model: Any, examples: list[Any], config: TrainConfig,
                     pad: int) -> float:
    """Eval loss over the whole split, each process taking its share of the batches."""
    from harness.trial.evaluation import eval_sums, mean_loss

    total, tokens = eval_sums(accelerator.unwrap_model(model), examples,
                              batch_size=config.training.micro_batch_size, pad_id=pad,
                              device=accelerator.device,
                              shard=(accelerator.process_index, accelerator.num_processes))
    return mean_loss(*sum_across(accelerator, [total, tokens]))


def train_loop(config: TrainConfig, model: Any, optimizer: Any, scheduler: Any,
               accelerator: Any, train: list[Any], pad: int, events: Events, *,
               step: int, progress: dict[str, int], total_steps: int, out: Path,
               evaluate_now: Any, save: Any) -> None:
    from harness.trial.batching import batches_per_epoch, iterate

    t = config.training
    fault = _fault()
    processes = accelerator.num_processes
    per_epoch = batches_per_epoch(len(train), t.micro_batch_size)
    epochs = math.ceil(total_steps * t.gradient_accumulation * processes / per_epoch) + 1
    batches = iterate(train, batch_size=t.micro_batch_size, seed=t.seed,
                      start_epoch=progress["epoch"], skip=progress["batch"], epochs=epochs)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]  # once, not every step
    clip = t.max_grad_norm if t.max_grad_norm > 0 else float("inf")
    position = dict(progress)
    while step < total_steps:
        started = time.perf_counter()
        mean_loss, tokens, stop = accumulate(model, accelerator, batches, position, config,
                                             pad, nan=fault == ("nan", step + 1))
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
                        epoch=position["epoch"] + position["batch"] / per_epoch)
        if stop:
            raise Stop("killed", f"stopped by {_stop_cause} after step {step}")
        if t.save_steps and step % t.save_steps == 0 and step < total_steps:
            checkpoint(save, out, step, model, optimizer, scheduler, accelerator, position,
                       events)
        if t.eval_steps and step % t.eval_steps == 0 and step < total_steps:
            evaluate_now(step)


def accumulate(model: Any, accelerator: Any, batches: Any, position: dict[str, int],
               config: TrainConfig, pad: int, *, nan: bool) -> tuple[float, int, bool]:
    """One optimizer step's forward and backward passes: (mean loss over all processes,
    tokens over all processes, whether any process was asked to stop).

    Each micro-step takes the next micro-batch of every process (all walk the same order)
    and trains on its own; ``position`` (epoch, batch within it) moves past all of them.
    """
    import torch

    from harness.trial.batching import collate

    accumulation = config.training.gradient_accumulation
    rank, processes = accelerator.process_index, accelerator.num_processes
    tokens, losses = 0, []
    for micro in range(accumulation):
        group = [next(batches) for _ in range(processes)]
        for epoch, batch in group:
            position["batch"] = position["batch"] + 1 if epoch == position["epoch"] else 1
            position["epoch"] = epoch
            tokens += sum(len(e.input_ids) for e in batch)  # on the host: no device sync
        inputs = collate(group[rank][1], pad)
        # gradients are exchanged once per optimizer step, on its last micro-batch
        quiet = micro < accumulation - 1 and processes > 1
        with accelerator.no_sync(model) if quiet else contextlib.nullcontext():
            loss = model(**{k: v.to(accelerator.device) for k, v in inputs.items()}).loss
            if nan:
                loss = loss * float("nan")
            accelerator.backward(loss / accumulation)
        losses.append(loss.detach())
    mean = float(torch.stack(losses).mean())  # the step's one sync, as any loop logs
    if processes == 1:
        return mean, tokens, _stop_requested
    loss_sum, stops = sum_across(accelerator, [mean, float(_stop_requested)])
    return loss_sum / processes, tokens, stops > 0


def checkpoint(save: Any, out: Path, step: int, model: Any, optimizer: Any, scheduler: Any,
               accelerator: Any, position: dict[str, int], events: Events) -> None:
    """The main process writes the checkpoint (every process holds the same weights)."""
    if not accelerator.is_main_process:
        return
    path = save(out, step=step, model=accelerator.unwrap_model(model), optimizer=optimizer,
                scheduler=scheduler, progress=dict(position))
    events.emit("checkpoint", step=step, path=str(path))


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
                  events: Events) -> None:
    from harness.trial.samples import comparison_rows, generate, sample_prompts, write_reports

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
    written = scratch(out, SAMPLES_DIR)
    write_reports(rows, written, settings)
    put_in_place(out, written, entry=SAMPLES_DIR)
    events.emit("samples", rows=rows, dir=str(out / SAMPLES_DIR))


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

