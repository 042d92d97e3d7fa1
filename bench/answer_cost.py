"""Benchmark: what answer metrics cost. Two parts, each alone on the machine:

1. Generation speed: the embedded model's greedy answers to MedQuAD eval prompts (as the
   trials' answer metrics ask them: chat template, ``--new-tokens`` at most, each row ending
   at its EOS) at several batch sizes, in prompts per second, with the batched answers checked
   against one-prompt-at-a-time answers.
2. A demo trial with and without a metric objective: the demo's first trial
   (search_spaces/demo.yaml, its enqueued webui-defaults parameters) run twice by `harness
   train`, once as shipped and once with ``evaluation.metrics: [rougeL]`` and ``objective:
   eval/rougeL``, in one fresh HARNESS_HOME each (no cached base answers: a study's first
   trial). Reports the wall time of each and the generation seconds from the trial's events.

Usage: python bench/answer_cost.py [--prompts 48] [--new-tokens 64] [--batches 1,8,16,32]
                                   [--skip-trial]
Prints Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import MEDQUAD, ROOT

from harness.config import EvaluationSettings, QuantConfig


def prompts(count: int, tokenizer: object) -> list[object]:
    from harness.config import DataConfig
    from harness.data.load import load_dataset
    from harness.data.render import ChatRenderer
    from harness.trial.answers import answer_prompts

    data = load_dataset(DataConfig(path=str(MEDQUAD / "5_NIDDK_QA"), format="medquad",
                                   eval_fraction=0.0, test_fraction=0.0), tokenizer=tokenizer)
    return answer_prompts(data.records, ChatRenderer(tokenizer), cap=count,
                          special=tokenizer.all_special_tokens)  # type: ignore[attr-defined]


def generation(args: argparse.Namespace) -> list[str]:
    from harness.models import load_model, training_tokenizer
    from harness.trial.answers import answer

    tokenizer = training_tokenizer("smollm2-135m-instruct")
    model = load_model("smollm2-135m-instruct", QuantConfig()).eval()
    asked = prompts(args.prompts, tokenizer)
    lines = [f"{len(asked)} MedQuAD (NIDDK) prompts, greedy, at most {args.new_tokens} new "
             "tokens, embedded SmolLM2-135M-Instruct in float32 on the CPU", "",
             "| batch | seconds | prompts/s | new tokens/s | same answers as batch 1 |",
             "| ---: | ---: | ---: | ---: | :---: |"]
    alone: list[str] | None = None
    for batch in map(int, args.batches.split(",")):
        settings = EvaluationSettings(max_new_tokens=args.new_tokens, generate_batch=batch)
        got = answer(model, tokenizer, asked, settings=settings, chat=True, device="cpu")
        alone = alone or got.answers
        new = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"])
                  for a in got.answers)
        lines.append(f"| {batch} | {got.seconds:.1f} | {len(asked) / got.seconds:.2f} | "
                     f"{new / got.seconds:.1f} | {'yes' if got.answers == alone else 'no'} |")
        print(lines[-1], flush=True)
    return lines


def demo_trial(*, metric: bool, work: Path) -> dict[str, float]:
    """The demo's first trial by `harness train`: wall seconds and what its events say."""
    space = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    first = space["enqueue"][0]
    config = {k: v for k, v in space.items() if k not in ("study", "registry", "search",
                                                            "enqueue")}
    config["lora"] = {**config.get("lora", {}), "r": first["lora.r"],
                      "alpha": first["lora.alpha"]}
    config["training"] = {**config["training"],
                          "learning_rate": first["training.learning_rate"]}
    config["data"]["path"] = str(ROOT / config["data"]["path"])
    if metric:
        config["evaluation"] = {"metrics": ["rougeL"], "objective": "eval/rougeL"}
    config["tracking"] = {"uri": f"sqlite:///{work}/mlflow.db", "experiment": "bench"}
    config["output_dir"] = str(work / "out")
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HARNESS_HOME": str(work / "home")}
    models = Path(os.environ.get("HARNESS_HOME", Path.home() / ".cache/harness")) / "models"
    (work / "home").mkdir()
    (work / "home" / "models").symlink_to(models)  # the converted model, as after install
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "harness", "train", str(path)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - began
    events = [json.loads(line) for line in (work / "out" / "events.jsonl").open()]
    answering = sum(e.get("answer_seconds") or 0 for e in events if e["event"] == "eval")
    return {"wall": wall, "eval_answer_seconds": answering,
            "epoch_ends": sum(e["event"] == "eval" and e.get("answers") is not None
                              for e in events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", default="1,8,16,32")
    parser.add_argument("--skip-trial", action="store_true")
    args = parser.parse_args()
    lines = generation(args)
    if not args.skip_trial:
        lines += ["", "| demo trial 0 | wall s | answers at epoch ends (s) | epoch ends |",
                  "| --- | ---: | ---: | ---: |"]
        for metric in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                got = demo_trial(metric=metric, work=Path(tmp))
            label = "objective eval/rougeL" if metric else "as shipped (eval_loss)"
            lines.append(f"| {label} | {got['wall']:.0f} | {got['eval_answer_seconds']:.0f} "
                         f"| {got['epoch_ends']:.0f} |")
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
