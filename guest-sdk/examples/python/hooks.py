"""A podrun hook in Python (componentize-py), implementing every point of podrun:hooks@0.1.0.

It proves the contract is language-neutral: JSON strings in, WIT types out, Python's own
json module. Build: tools/build-guests.sh (componentize-py -w podrun:hooks/hooks@0.1.0).

- mutate_pod: adds the annotation ``podrun.dev/checked-by: python`` (plus config.annotations).
- validate_pod: denies pods whose containers use an image with the ``:latest`` tag (or no tag).
- filter_log: drops empty lines, masks e-mail addresses with ``<email>``.
- process_xcom: wraps the value as ``{"python": value}``.
- decide: exit code 3 means "skip: python says nothing to do"; otherwise keep.
"""

import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.exports import decide, filter_log, validate_pod
from wit_world.imports import host

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _json(what, text):
    try:
        return json.loads(text)
    except ValueError as e:
        raise Err(f"invalid {what} JSON: {e}")


class MutatePod(wit_world.exports.MutatePod):
    def mutate_pod(self, pod: str, ctx: str) -> str:
        p = _json("pod", pod)
        c = _json("ctx", ctx)
        notes = p.setdefault("metadata", {}).setdefault("annotations", {})
        notes["podrun.dev/checked-by"] = "python"
        for k, v in (c.get("config") or {}).get("annotations", {}).items():
            notes[k] = str(v)
        host.log(host.Level.INFO, f"python: annotated pod {p['metadata'].get('name')}")
        return json.dumps(p)


class ValidatePod(wit_world.exports.ValidatePod):
    def validate_pod(self, pod: str, ctx: str) -> validate_pod.Verdict:
        p = _json("pod", pod)
        for c in p.get("spec", {}).get("containers", []):
            image = c.get("image", "")
            name_part = image.rsplit("/", 1)[-1]
            if "@" not in image and (":" not in name_part or name_part.endswith(":latest")):
                return validate_pod.Verdict(
                    allowed=False,
                    reason=f"container {c.get('name')!r} uses a floating image tag: {image}",
                    warnings=[],
                )
        return validate_pod.Verdict(allowed=True, reason=None, warnings=[])


class FilterLog(wit_world.exports.FilterLog):
    def filter_log(self, lines, ctx: str):
        out = []
        for line in lines:
            if not line.strip():
                out.append(filter_log.LineAction_Drop())
            elif EMAIL.search(line):
                out.append(filter_log.LineAction_Replace(EMAIL.sub("<email>", line)))
            else:
                out.append(filter_log.LineAction_Keep())
        return out


class ProcessXcom(wit_world.exports.ProcessXcom):
    def process_xcom(self, value: str, ctx: str) -> str:
        return json.dumps({"python": _json("xcom value", value)})


class Decide(wit_world.exports.Decide):
    def decide(self, outcome: str, ctx: str) -> decide.Decision:
        o = _json("outcome", outcome)
        if o.get("exit_code") == 3:
            return decide.Decision_Skip("python says nothing to do")
        return decide.Decision_Keep()
