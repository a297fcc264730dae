"""The device taxonomy and the fingerprint catalog: data files, not code.

``data/taxonomy.yaml`` names the device classes (infusion pump, patient monitor, CT scanner, PACS, HL7 interface
engine, … and the IT/IoT/network classes) a ``device_type`` can take. ``data/rules/*.yaml`` holds fingerprint
rules: *when* a device has evidence matching some conditions, *then* it also has these attribute values, with a
confidence and the public source the rule comes from. Users add rule files of their own from directories they
name (``--catalog DIR``, ``WARDWATCH_CATALOG``); a rule with the id of a built-in one replaces it.

A rule file::

    rules:
      - id: dicom-impl-dcmtk
        when: {attribute: implementation, regex: '^OFFIS_DCMTK_(?P<v>\\d+)'}
        then: {software: 'OFFIS DCMTK {v}'}
        confidence: 0.8
        source: DCMTK dcmdata/include/dcmtk/dcmdata/dcuid.h (OFFIS_DTK_IMPLEMENTATION_VERSION_NAME)

Conditions (all must hold, each on one piece of the device's evidence) test an ``attribute`` with one of
``equals``, ``prefix``, ``contains`` (case-insensitive, a run of white space as one space) or ``regex`` (Python
syntax, searched, case-insensitive), and optionally the evidence ``from`` (a source prefix such as ``oui`` or
``dhcp-option-60``). Named groups of the regexes fill ``{name}`` in the values. Rules read observed evidence
only (never what other rules derived), so no rule order matters; a derived value is at most as sure as the
evidence it came from.

A broken file or rule raises ``CatalogError`` naming the file and the rule: nothing is skipped silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from wardwatch.errors import CatalogError
from wardwatch.model.inventory import Evidence
from wardwatch.model.observation import Attribute

ENV = "WARDWATCH_CATALOG"
"""Directories of user rule files (and an optional taxonomy.yaml adding classes), separated by ``os.pathsep``."""
TESTS = ("equals", "prefix", "contains", "regex")
ATTRIBUTES = frozenset(a.value for a in Attribute)
#: libyaml's safe loader when PyYAML was built with it (five times faster), else PyYAML's own.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class DeviceClass:
    """One class of the taxonomy."""

    id: str
    label: str
    group: str
    """``medical``, ``clinical-it``, ``it``, ``iot`` or ``network``."""
    parent: str | None = None
    description: str = ""


def _norm(text: str) -> str:
    """Text for the equals/prefix/contains tests: case folded, runs of white space as one space (registries
    and devices are not consistent about either)."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True)
class Condition:
    attribute: str
    test: str
    value: str
    pattern: re.Pattern[str] | None
    source_prefix: str | None
    normalized: str = ""
    """``value`` as the text tests compare it (``_norm``)."""

    def match(self, e: Evidence) -> dict[str, str] | None:
        """The named groups (empty for non-regex tests) when ``e`` satisfies this condition, else None."""
        if e.attribute != self.attribute or (self.source_prefix and not e.source.startswith(self.source_prefix)):
            return None
        if self.pattern is not None:
            found = self.pattern.search(e.value)
            return {k: v for k, v in found.groupdict().items() if v is not None} if found else None
        value, want = _norm(e.value), self.normalized
        ok = (
            value == want
            if self.test == "equals"
            else value.startswith(want)
            if self.test == "prefix"
            else want in value
        )
        return {} if ok else None


@dataclass(frozen=True, slots=True)
class Rule:
    """One fingerprint rule (see the module docstring)."""

    id: str
    when: tuple[Condition, ...]
    then: tuple[tuple[str, str], ...]
    confidence: float
    source: str
    origin: str
    """The file the rule was read from."""


class Catalog:
    """The taxonomy and the rules, applied to a device's evidence by ``derive``."""

    def __init__(self, classes: Iterable[DeviceClass], rules: Iterable[Rule]) -> None:
        self.classes: dict[str, DeviceClass] = {c.id: c for c in classes}
        self.rules: dict[str, Rule] = {}
        for rule in rules:
            self.rules[rule.id] = rule
        self._by_attribute: dict[str, list[Rule]] = {}
        """Rules by the attribute of their first condition (those not found through ``_by_value``)."""
        self._by_value: dict[tuple[str, str], list[Rule]] = {}
        """Rules whose first condition is an ``equals`` test, by (attribute, normalised value)."""
        for rule in self.rules.values():
            first = rule.when[0]
            if first.test == "equals":
                self._by_value.setdefault((first.attribute, first.normalized), []).append(rule)
            else:
                self._by_attribute.setdefault(first.attribute, []).append(rule)

    def label(self, device_type: str | None) -> str | None:
        """The taxonomy label of a device type (free text from the wire is its own label)."""
        if device_type is None:
            return None
        cls = self.classes.get(device_type)
        return cls.label if cls is not None else device_type

    def is_medical(self, device_type: str | None) -> bool:
        cls = self.classes.get(device_type or "")
        return cls is not None and cls.group == "medical"

    def derive(self, evidence: Sequence[Evidence]) -> list[Evidence]:
        """Evidence the rules add to a device with this evidence (source ``catalog:<rule id>``; the packet is
        the one of the evidence the rule's first condition matched)."""
        out: dict[tuple[str, str, str], Evidence] = {}
        for first in evidence:
            candidates = self._by_value.get((first.attribute, _norm(first.value)), [])
            for rule in [*candidates, *self._by_attribute.get(first.attribute, ())]:
                groups = rule.when[0].match(first)
                if groups is None:
                    continue
                sure = first.confidence
                for cond in rule.when[1:]:
                    hit = next(((e, g) for e in evidence if (g := cond.match(e)) is not None), None)
                    if hit is None:
                        break
                    groups = {**hit[1], **groups}
                    sure = min(sure, hit[0].confidence)
                else:
                    for attribute, template in rule.then:
                        try:
                            value = template.format(**groups).strip()
                        except (KeyError, IndexError, ValueError):
                            continue  # an optional group did not match: the rule says nothing here
                        if not value:
                            continue
                        key = (attribute, value, f"catalog:{rule.id}")
                        conf = round(min(rule.confidence, sure), 3)
                        if key not in out or out[key].confidence < conf:
                            out[key] = Evidence(attribute, value, key[2], conf, first.packet,
                                                first.first_ns, first.last_ns, first.count)  # fmt: skip
        return [out[k] for k in sorted(out)]


def _conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("attribute"), str):
            raise CatalogError(f"{where}: every condition needs an attribute")
        if item["attribute"] not in ATTRIBUTES:
            raise CatalogError(f"{where}: unknown attribute {item['attribute']!r}")
        tests = [t for t in TESTS if t in item]
        if len(tests) != 1 or not isinstance(item[tests[0]], str):
            raise CatalogError(f"{where}: a condition has exactly one of {', '.join(TESTS)} (text)")
        unknown = set(item) - {"attribute", "from", *TESTS}
        if unknown:
            raise CatalogError(f"{where}: unknown condition keys {sorted(unknown)}")
        pattern = None
        if tests[0] == "regex":
            try:
                pattern = re.compile(item["regex"], re.IGNORECASE)
            except re.error as exc:
                raise CatalogError(f"{where}: bad regex {item['regex']!r}: {exc}") from None
        value = item[tests[0]]
        out.append(Condition(item["attribute"], tests[0], value, pattern, item.get("from"), _norm(value)))
    if not out:
        raise CatalogError(f"{where}: a rule needs at least one condition")
    return tuple(out)


def _rule(raw: Any, origin: str, classes: dict[str, DeviceClass]) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise CatalogError(f"{origin}: every rule needs an id")
    where = f"{origin}: rule {raw['id']!r}"
    unknown = set(raw) - {"id", "when", "then", "confidence", "source"}
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(raw.get("source"), str) or not raw["source"].strip():
        raise CatalogError(f"{where}: every rule cites its source")
    conf = raw.get("confidence")
    if not isinstance(conf, int | float) or not 0 < conf <= 1:
        raise CatalogError(f"{where}: confidence must be a number in (0, 1]")
    then = raw.get("then")
    if not isinstance(then, dict) or not then:
        raise CatalogError(f"{where}: 'then' maps attributes to values")
    for attribute, value in then.items():
        if attribute not in ATTRIBUTES or not isinstance(value, str):
            raise CatalogError(f"{where}: 'then' has {attribute!r}: {value!r} (an attribute and a text value)")
        if attribute == "device_type" and value not in classes:
            raise CatalogError(f"{where}: device_type {value!r} is not a class of the taxonomy")
    return Rule(raw["id"], _conditions(raw.get("when"), where), tuple(then.items()), float(conf), raw["source"], origin)


def _load_yaml(path: Path | Any, name: str) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{name}: not readable as YAML: {exc}") from None


def _classes(doc: Any, name: str) -> list[DeviceClass]:
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list):
        raise CatalogError(f"{name}: a taxonomy file has a 'classes' list")
    out = []
    for item in doc["classes"]:
        if not isinstance(item, dict) or not {"id", "label", "group"} <= set(item):
            raise CatalogError(f"{name}: every class has an id, a label and a group: {item!r}")
        out.append(DeviceClass(str(item["id"]), str(item["label"]), str(item["group"]), item.get("parent"),
                               str(item.get("description", ""))))  # fmt: skip
    return out


def load(dirs: Sequence[str | os.PathLike[str]] = ()) -> Catalog:
    """The built-in catalog plus the rule files (``*.yaml``) and taxonomy additions of ``dirs`` and of the
    directories in ``$WARDWATCH_CATALOG``."""
    data = files("wardwatch.inventory") / "data"
    classes = _classes(_load_yaml(data / "taxonomy.yaml", "taxonomy.yaml"), "taxonomy.yaml")
    builtin_files = sorted((e for e in (data / "rules").iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)
    sources: list[tuple[str, Any]] = [(f"rules/{e.name}", e) for e in builtin_files]
    extra = [*dirs, *(d for d in os.environ.get(ENV, "").split(os.pathsep) if d)]
    for d in extra:
        path = Path(d)
        if not path.is_dir():
            raise CatalogError(f"catalog directory {path} does not exist")
        for file in sorted(path.glob("*.yaml")):
            if file.name == "taxonomy.yaml":
                classes += _classes(_load_yaml(file, str(file)), str(file))
            else:
                sources.append((str(file), file))
    by_id = {c.id: c for c in classes}
    for c in classes:
        if c.parent is not None and c.parent not in by_id:
            raise CatalogError(f"taxonomy: class {c.id!r} has an unknown parent {c.parent!r}")
    rules: list[Rule] = []
    for name, entry in sources:
        doc = _load_yaml(entry, name)
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            raise CatalogError(f"{name}: a rule file has a 'rules' list")
        rules += [_rule(raw, name, by_id) for raw in doc["rules"]]
    return Catalog(classes, rules)


@lru_cache(maxsize=1)
def builtin() -> Catalog:
    """The catalog of the built-in data files (and ``$WARDWATCH_CATALOG``), loaded once."""
    return load()
