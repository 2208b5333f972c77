"""Read a flow document (JSON or YAML) under size, depth and node limits; parse it to the domain.

Every fault is collected with its JSON path: each node is validated on its own, so one bad node
does not hide the others, and graph rules run on the nodes that parsed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from ccbridge.domain.ivr import model as m
from ccbridge.domain.ivr.validation import FlowError, node_path, validate_graph
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.ivr_format.models import NODE_MODELS, FlowDocument, FlowShell
from ccbridge.services.ivr_ports import ParseResult

MAX_BODY_BYTES = 1024 * 1024
"""A flow document larger than 1 MiB is refused (HTTP 413)."""
MAX_DEPTH = 16
"""Nesting deeper than this is refused (HTTP 422)."""


class FlowLimitError(CcbridgeError):
    """A document over a hard limit: too large (413), too deep or too many nodes (422).

    Nothing is stored: the check runs before anything else.
    """

    code = ErrorCode.VALIDATION
    title = "Flow refused"

    def __init__(self, status: int, limit: str, path: str, message: str) -> None:
        super().__init__(message, field=path)
        self.status = status
        self.limit = limit
        self.path = path
        self.message = message
        self.errors = [{"field": path, "code": limit, "message": message}]


@dataclass(frozen=True, slots=True)
class ParsedFlow:
    """A parsed document: the domain flow (``None`` when its shell is broken) and every fault."""

    document: dict[str, Any]
    flow: m.Flow | None
    errors: list[FlowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether the flow has no fault at all."""
        return self.flow is not None and not self.errors


def _reject_aliases(text: str) -> None:
    """YAML anchors and aliases can expand a small file into a huge tree: refuse them."""
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, yaml.AliasToken | yaml.AnchorToken):
            raise FlowLimitError(422, "yaml_aliases", "$", "YAML anchors and aliases are refused")


def load_document(data: bytes, media_type: str = "application/json") -> dict[str, Any]:
    """Decode ``data`` (JSON, or YAML when the media type says so) within the limits."""
    if len(data) > MAX_BODY_BYTES:
        raise FlowLimitError(
            413,
            "max_body_bytes",
            "$",
            f"the flow document is {len(data)} bytes; the limit is {MAX_BODY_BYTES} bytes",
        )
    try:
        if "yaml" in media_type:
            text = data.decode("utf-8")
            _reject_aliases(text)
            # to plain JSON types: YAML dates become ISO strings, number keys ("1:") strings
            doc = orjson.loads(orjson.dumps(yaml.safe_load(text), option=orjson.OPT_NON_STR_KEYS))
        else:
            doc = orjson.loads(data)
    except (
        UnicodeDecodeError,
        orjson.JSONDecodeError,
        orjson.JSONEncodeError,
        yaml.YAMLError,
    ) as exc:
        raise FlowLimitError(422, "syntax", "$", f"not valid JSON/YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise FlowLimitError(422, "syntax", "$", "the flow document must be an object")
    check_limits(doc)
    return doc


def _depth_exceeded(doc: Any) -> str | None:
    """Return the path of the first value nested deeper than MAX_DEPTH (iteratively)."""
    stack: list[tuple[Any, int, str]] = [(doc, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{path}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{path}.{i}") for i, v in enumerate(value))
    return None


def check_limits(doc: Mapping[str, Any]) -> None:
    """Refuse too many nodes (before any per-node work) and too deep nesting."""
    nodes = doc.get("nodes")
    if isinstance(nodes, dict) and len(nodes) > m.MAX_NODES:
        raise FlowLimitError(
            422,
            "max_nodes",
            "$.nodes",
            f"the flow has {len(nodes)} nodes; the limit is {m.MAX_NODES}",
        )
    deep = _depth_exceeded(doc)
    if deep is not None:
        raise FlowLimitError(
            422, "max_depth", deep, f"nesting deeper than {MAX_DEPTH} levels at {deep}"
        )


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    return prefix + "".join(f".{part}" for part in loc)


def _errors(prefix: str, exc: ValidationError) -> list[FlowError]:
    return [
        FlowError(_path(prefix, tuple(e["loc"])), e["type"], e["msg"])
        for e in exc.errors(include_url=False)
    ]


def parse_flow(doc: dict[str, Any], known_prompts: Collection[str] | None = None) -> ParsedFlow:
    """Validate ``doc`` and build the domain flow; collect every fault with its JSON path."""
    check_limits(doc)
    try:
        shell = FlowShell.model_validate(doc)
    except ValidationError as exc:
        # A broken shell (say, no name) must not hide the nodes' faults: list those too.
        raw_nodes = doc.get("nodes")
        node_errors = _parse_nodes(raw_nodes)[2] if isinstance(raw_nodes, dict) else []
        return ParsedFlow(doc, None, _errors("$", exc) + node_errors)
    nodes, broken, errors = _parse_nodes(shell.nodes)
    fb = shell.fallback
    flow = m.Flow(
        name=shell.name,
        start=shell.start,
        nodes=nodes,
        language=shell.language,
        languages=tuple(shell.languages),
        max_steps=shell.max_steps,
        fallback=m.Fallback(m.RouteKind(fb.route), fb.target),
        dids=tuple(shell.dids),
    )
    errors.extend(validate_graph(flow, broken, known_prompts))
    return ParsedFlow(doc, flow, errors)


def _parse_nodes(
    raw_nodes: Mapping[str, Any],
) -> tuple[dict[str, m.Node], list[str], list[FlowError]]:
    """Parse each node on its own: (the nodes that parsed, the ids that did not, their faults)."""
    errors: list[FlowError] = []
    nodes: dict[str, m.Node] = {}
    broken: list[str] = []
    for node_id, raw in raw_nodes.items():
        where = node_path(node_id)
        if not m.NODE_ID_RE.fullmatch(node_id):
            errors.append(FlowError(where, "bad_node_id", "node ids are [A-Za-z][A-Za-z0-9_-]*"))
            broken.append(node_id)
            continue
        kind = raw.get("type") if isinstance(raw, dict) else None
        model = NODE_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            errors.append(
                FlowError(
                    f"{where}.type",
                    "unknown_node_type",
                    f"unknown node type {str(kind)[:40]!r}; one of {', '.join(NODE_MODELS)}",
                )
            )
            broken.append(node_id)
            continue
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_errors(where, exc))
            broken.append(node_id)
            continue
        nodes[node_id] = parsed.to_domain(node_id)
    return nodes, broken, errors


class YamlJsonFlowCodec:
    """The ``FlowCodec`` port: JSON or YAML documents under the limits, parsed to the domain."""

    def load(self, data: bytes, media_type: str) -> dict[str, Any]:
        """Decode and check the limits (raises FlowLimitError)."""
        return load_document(data, media_type)

    def parse(self, document: dict[str, Any], known_prompts: set[str] | None = None) -> ParseResult:
        """Validate the document; every fault carries its JSON path."""
        parsed = parse_flow(document, known_prompts)
        return ParseResult(parsed.document, parsed.flow, parsed.errors)


def logic_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return the document without editor layout (what the engine runs, and what diffs compare)."""
    return {k: v for k, v in doc.items() if k != "layout"}


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a flow document (``ivr_flows/schema.json``)."""
    schema = FlowDocument.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://ccbridge.dev/schemas/ivr-flow.json"
    return schema


def schema_text() -> str:
    """Return the schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
