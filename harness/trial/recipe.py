"""One LoRA fine-tune, start to finish: the entry point of a trial's process.

Why our own accelerate loop rather than transformers' Trainer: the parent needs an event at every
optimizer step (loss, learning rate, grad norm, tokens/s), must be able to stop the child between
any two steps, and NaN/OOM/SIGTERM must each end with their own reason; checkpoints must be
written atomically and resume bit-for-bit. Trainer can be bent to each of these with callbacks,
but a forty-line loop does all of them plainly and keeps the hot path as lean as a bare peft loop.

Reads top to bottom: config → data → model → LoRA → base eval → train (evals at eval_steps and
at epoch ends, checkpoints) → the best epoch's adapter back → test eval → samples → adapter.
Exit codes are in `harness.protocol.EXIT_CODES`. With `training.num_processes` above 1 the
same loop runs data-parallel (see `harness.trial.parallel`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import traceback
from pathlib import Path

from harness.config import TrainConfig, from_mapping
from harness.errors import disk_full, is_disk_full
from harness.faults import cap_gpu_memory
from harness.protocol import (
    EVENTS_ENV,
    EXIT_CODES,
    PARENT_ENV,
    Events,
    EventWriter,
    Failed,
    Finished,
    RankEvents,
    Selected,
    Started,
)
from harness.trial.loop import TrainState, train_loop
from harness.trial.parallel import launched_rank
from harness.trial.selection import Choice, EpochSelection, epoch_ends
from harness.trial.setup import (
    Prepared,
    build_model,
    build_optimizer,
    prepare_data,
    seed_everything,
    steps_per_epoch,
)
from harness.trial.stopping import Stop, StopRequest
from harness.trialdir import TrialDir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one LoRA fine-tune (launched by harness)")
    parser.add_argument("output_dir", help="holds train_config.json; receives everything else")
    parser.add_argument("--resume", action="store_true",
                        help="go on from the newest intact checkpoint in OUTPUT_DIR")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    events = channel(out)
    stop = StopRequest()
    stop.install()
    stop.watch_parent(os.environ.get(PARENT_ENV, ""))
    try:
        config = from_mapping(TrainConfig, TrialDir(out).read_config())
        run(config, out, events=events, resume=args.resume, stop=stop)
    except Stop as stopped:
        _report(events, Failed(reason=stopped.reason, message=str(stopped)))
        return EXIT_CODES[stopped.reason]
    except Exception as err:  # every other failure is a crash, with its traceback
        failure = _failure(err, out)
        _report(events, failure)
        with contextlib.suppress(OSError):  # trial.log may sit on the full disk
            traceback.print_exc()
        return EXIT_CODES[failure.reason]
    finally:
        with contextlib.suppress(OSError):
            events.close()
    return 0


def channel(out: Path) -> Events:
    """This process's events: all of them from the main process, only how it failed from the
    others of a data-parallel trial."""
    writer = EventWriter(os.environ.get(EVENTS_ENV) or TrialDir(out).events)
    rank = launched_rank()
    return writer if rank == 0 else RankEvents(writer, rank)


def run(config: TrainConfig, out: Path, *, events: Events, resume: bool,
        stop: StopRequest) -> None:
    """The recipe: build, evaluate the base model, train (with evals and checkpoints),
    evaluate, then (main process) samples and the adapter."""
    from harness.trial.checkpoint import resume_from
    from harness.trial.evaluation import base_eval, evaluate, measure_test
    from harness.trial.model_card import figures_of, model_card
    from harness.trial.task_metrics import TaskMetrics

    state, data = build(config, out, events=events, stop=stop)
    model = state.accelerator.unwrap_model(state.model)
    selection = EpochSelection(out, ends=state.epoch_ends, objective=config.evaluation.objective)
    metrics = TaskMetrics(state, data)
    base_loss = base_eval(state, data, metrics)
    if resume:
        state.step, state.position = resume_from(
            out, model=model, optimizer=state.optimizer, scheduler=state.scheduler,
            events=events)
        selection.resume(state.step)

    def evaluate_now(step: int) -> None:
        event = evaluate(state, data, step=step, base_loss=base_loss, metrics=metrics)
        selection.consider(model, step=step, loss=event.loss, answers=event.answers,
                           main=state.accelerator.is_main_process)

    train_loop(state, evaluate_now=evaluate_now)
    evaluate_now(state.total_steps)
    choice = keep_best_epoch(state, selection)
    held_out = measure_test(state, data, metrics)
    if state.accelerator.is_main_process:  # the main process writes samples and the adapter
        write_outputs(state, data, card=model_card(
            config, fingerprint=data.fingerprint,
            figures=figures_of(choice=choice, held_out=held_out)))


def write_outputs(state: TrainState, data: Prepared, *, card: str) -> None:
    """The comparison samples, then the adapter with its model card: the trial's end."""
    from harness.models import resolve_model
    from harness.trial.adapter import save_adapter
    from harness.trial.samples import write_samples

    config = state.config
    write_samples(state, data)
    adapter_dir = save_adapter(config, state.accelerator.unwrap_model(state.model),
                               data.tokenizer, state.out, base_path=resolve_model(config.model),
                               card=card)
    state.events.emit(Finished(adapter_dir=str(adapter_dir), peak_memory_mb=peak_memory_mb()))


def keep_best_epoch(state: TrainState, selection: EpochSelection) -> Choice | None:
    """Load the best epoch end's adapter back (every process, once the main one has written
    it) and announce the choice: the trial's value is that epoch's; the choice."""
    from harness.trial.evaluation import perplexity

    state.accelerator.wait_for_everyone()
    choice = selection.restore(state.accelerator.unwrap_model(state.model),
                               last_step=state.total_steps)
    if choice is not None:
        state.events.emit(Selected(step=choice.step, epoch=choice.epoch, loss=choice.loss,
                                   perplexity=perplexity(choice.loss),
                                   last_step=state.total_steps, answers=choice.answers))
    return choice


def build(config: TrainConfig, out: Path, *, events: Events,
          stop: StopRequest) -> tuple[TrainState, Prepared]:
    """Seeded RNGs, the data, the LoRA model and its optimizer on the accelerator; announced
    by the `started` event."""
    import torch
    from accelerate import Accelerator

    seed_everything(config.training.seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    cap_gpu_memory()
    data = prepare_data(config)
    model = build_model(config)
    optimizer, scheduler, total_steps = build_optimizer(
        model, config, len(data.train), processes=accelerator.num_processes)
    ends = epoch_ends(total_steps=total_steps, steps_per_epoch=steps_per_epoch(
        config, len(data.train), processes=accelerator.num_processes))
    model, optimizer = accelerator.prepare(model, optimizer)
    events.emit(Started(pid=os.getpid(), total_steps=total_steps,
                        train_examples=len(data.train), eval_examples=len(data.evals),
                        test_examples=len(data.tests), fingerprint=data.fingerprint,
                        eval_fingerprint=data.eval_fingerprint,
                        test_fingerprint=data.test_fingerprint, profile=data.profile,
                        device=str(accelerator.device), processes=accelerator.num_processes,
                        trainable_parameters=sum(p.numel() for p in model.parameters()
                                                 if p.requires_grad)))
    return TrainState(config=config, accelerator=accelerator, model=model, optimizer=optimizer,
                      scheduler=scheduler, train=data.train, pad=data.tokenizer.pad_token_id,
                      events=events, out=out, total_steps=total_steps, stop=stop,
                      epoch_ends=ends), data


def _failure(err: BaseException, out: Path) -> Failed:
    """The `failed` event (with the traceback; for a full disk, where) of a failure that is
    not a `Stop`."""
    trace = traceback.format_exc()
    if is_disk_full(err):
        full = disk_full(err, out)
        return Failed(reason="disk_full", message=str(full), where=full.where, traceback=trace)
    if _is_oom(err):
        return Failed(reason="oom", message=_oom_message(err), traceback=trace)
    return Failed(reason="crash", message=f"{type(err).__name__}: {err}", traceback=trace)


def _report(events: Events, event: Failed) -> None:
    """Emit a last event if the disk lets us: the parent tells a full disk apart anyway."""
    with contextlib.suppress(OSError):
        events.emit(event)


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError | MemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


def _oom_message(err: BaseException) -> str:
    return (f"out of memory ({type(err).__name__}: {err}). Lower training.micro_batch_size or "
            "data.cutoff_len, use quantization 4bit, or turn on gradient_checkpointing")


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
