"""How a person uses a registered adapter: the version's description in the registry, and the
peft snippet `harness pull` prints too."""

from __future__ import annotations

import math


def version_description(model: str, version: str, *, tags: dict[str, str]) -> str:
    """The version's description in the registry: what it is, and three ways to load it."""
    test = float(tags.get("test_loss", "nan"))
    figures = f"{tags.get('objective', 'eval_loss')} {float(tags['objective_value']):.4f}" + (
        f", test loss {test:.4f}" if math.isfinite(test) else "")
    base = tags.get("base_model", "")
    return f"""LoRA adapter on `{base}` from study `{tags.get('study')}`, trial \
{tags.get('trial')} ({figures}).

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


def peft_snippet(base: str, adapter_dir: str) -> str:
    """Python that loads ``base`` + the adapter in ``adapter_dir`` with peft."""
    return f"""from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base = AutoModelForCausalLM.from_pretrained("<{base} directory or hub id>")  # `harness models`
model = PeftModel.from_pretrained(base, "{adapter_dir}")
tokenizer = AutoTokenizer.from_pretrained("{adapter_dir}")"""
