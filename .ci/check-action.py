"""Checks that action.yml and the scripts under action/ agree.

actionlint checks action.yml's syntax and the inputs that workflows pass to it; this
checks what it cannot see inside the composite action: every `inputs.X` used is
declared and every declared input is used, every `steps.ID` exists, every output is
written by the scripts (`output NAME ...`), and every INPUT_*/SWARM_* variable a
script reads is set by action.yml (or documented as a test hook).
"""

import re
import sys
from pathlib import Path

import yaml

# Read by the scripts but set by people or tests, not by action.yml.
HOOKS = {"SWARM_RELEASE_URL"}

root = Path(__file__).resolve().parent.parent
action = yaml.safe_load((root / "action.yml").read_text())
text = (root / "action.yml").read_text()
scripts = {p.name: p.read_text() for p in sorted((root / "action").glob("*.sh"))}
errors = []

if action.get("runs", {}).get("using") != "composite":
    errors.append("action.yml: runs.using must be composite")
steps = action["runs"]["steps"]
step_ids = {s.get("id") for s in steps}
inputs = set(action.get("inputs", {}))

used_inputs = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", text))
for name in sorted(used_inputs - inputs):
    errors.append(f"action.yml uses undeclared input `{name}`")
for name in sorted(inputs - used_inputs):
    errors.append(f"action.yml declares input `{name}` but never uses it")

for sid, _ in re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", text):
    if sid not in step_ids:
        errors.append(f"action.yml refers to unknown step `{sid}`")

written = set()
for body in scripts.values():
    written |= set(re.findall(r"^\s*output ([a-z0-9-]+) ", body, re.M))
for name, spec in action.get("outputs", {}).items():
    m = re.fullmatch(r"\$\{\{ steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+) \}\}", spec["value"])
    if not m:
        errors.append(f"output `{name}`: unexpected value {spec['value']!r}")
    elif m.group(2) not in written:
        errors.append(f"output `{name}`: no script writes `{m.group(2)}`")

env_set = set()
for s in steps:
    env_set |= set((s.get("env") or {}).keys())
    if "run" in s:
        m = re.search(r"action/([a-z-]+\.sh)", s["run"])
        if not m or m.group(1) not in scripts:
            errors.append(f"step `{s.get('id')}` runs no script under action/")
for fname, body in scripts.items():
    for var in sorted(set(re.findall(r"\$\{?((?:INPUT|SWARM)_[A-Z_]+)", body))):
        if var not in env_set and var not in HOOKS:
            errors.append(f"action/{fname} reads {var}, which action.yml never sets")

for e in errors:
    print(f"check-action: {e}")
if errors:
    sys.exit(1)
print(f"action.yml: {len(inputs)} inputs, {len(action.get('outputs', {}))} outputs, {len(scripts)} scripts agree")
