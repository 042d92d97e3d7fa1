"""How a person uses a registered adapter: the version's description in the registry, and the
peft snippet `harness pull` prints too."""

from __future__ import annotations

import math

from harness.models import peft_snippet
from harness.urls import ui_route


def version_description(model: str, version: str, *, tags: dict[str, str],
                        experiment_id: str | None = None) -> str:
    """The version's description in the registry: what it is (its trial's run linked), and
    three ways to load it."""
    objective = tags.get("objective", "eval_loss")
    figures = f"{objective} {float(tags['objective_value']):.4f}"
    for name in ("loss", objective.removeprefix("eval/")):
        value = float(tags.get(f"test_{name}", "nan"))
        if math.isfinite(value) and f"test {name}" not in figures:
            figures += f", test {name} {value:.4f}"
    base = tags.get("base_model", "")
    trial = f"trial {tags.get('trial')}"
    if experiment_id and tags.get("run_id"):
        trial = f"[{trial}]({ui_route(experiment_id, tags['run_id'])})"
    return f"""LoRA adapter on `{base}` from study `{tags.get('study')}`, {trial} ({figures}).

Pull it, checked on its base model:

```
harness pull {model}/{version} --out adapters/{model}
```

Load base + adapter as a text-generation pipeline with MLflow:

```python
import mlflow
pipe = mlflow.transformers.load_model("models:/{model}/{version}")
print(pipe("What are the symptoms of glaucoma?", max_new_tokens=60)[0]["generated_text"])
```

Or with PEFT, from the pulled directory:

```python
{peft_snippet(base, f"adapters/{model}")}
```
"""
