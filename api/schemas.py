"""Typed request and reply bodies (the OpenAPI document is generated from these), and the one
function that reads a JSON body: media type, size, depth and field sizes are checked before any
model sees the data, so a hostile body is a 4xx, never a 500."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import orjson
from flask import g, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from api.errors import BadRequest, InvalidJSON, PayloadTooLarge, UnsupportedMediaType
from kg.loader import ImportReport
from qa.types import ChatResponse as ChatResponse  # the chat reply is the dialogue layer's model, re-used
from qa.types import Status

M = TypeVar("M", bound=BaseModel)

MAX_STRING_CHARS = 65_536  # any single string in a JSON body
MAX_JSON_NODES = 50_000  # values of any kind in one body

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control(v: str) -> str:
    if _CONTROL.search(v):
        raise ValueError("control characters are not allowed")
    return v


# -- shared field types ------------------------------------------------------------------------------
SessionId = Annotated[str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Message = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_no_control)]
ShortText = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_control)]
LongText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_control)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
AttrValue = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    """A reply body. Replies are sent as `model_dump()`, so every field is always present: the
    document marks fields with defaults as required in replies too."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


# -- errors --------------------------------------------------------------------------------------------
class FieldError(Reply):
    field: str = Field(description="Dotted path of the field (`message`, `attributes.colour`), or the import "
                                   "column; empty when the problem is the whole body.")
    message: str
    type: str = Field("", description="A short machine-readable kind (`missing`, `string_too_long`, ...).")


class ErrorDetails(BaseModel):
    """Always an object (`{}` when there is nothing to add): `fields` for field-level problems,
    otherwise named values such as `got`, `limit_per_minute` or `reason`."""

    model_config = ConfigDict(extra="allow")

    fields: list[FieldError] | None = Field(None, exclude_if=lambda v: v is None,
                                            description="Each field that failed validation (422).")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`, `not_found`.")
    message: str = Field(description="A short sentence for people; never a stack trace or database text.")
    details: ErrorDetails
    request_id: str | None = Field(None, description="The request's id (also the X-Request-Id header).")


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- chat ----------------------------------------------------------------------------------------------
class ChatRequest(Strict):
    model_config = ConfigDict(extra="forbid", strict=True)

    session_id: SessionId | None = Field(None, description="Continue this session; omit to start one.")
    message: Message


# What a chat reply's `status` says about the turn: the dialogue engine's own statuses.
ChatStatus = Status


class TokenEvent(Reply):
    """`event: token`: the next piece of the answer's text."""

    text: str


class TurnOut(Reply):
    turn: int
    role: Literal["user", "assistant"]
    text: str
    intent: str | None = None
    status: ChatStatus | None = Field(None, description="The reply's status (assistant turns).")
    at: str = ""


class SessionResponse(Reply):
    session_id: str
    signed_in: bool
    turns: list[TurnOut]


class FeedbackRequest(Strict):
    model_config = ConfigDict(extra="forbid", strict=True)

    session_id: SessionId
    turn: int = Field(ge=1, le=10_000, description="The reply's `turn` number from the chat response.")
    rating: int = Field(ge=1, le=5, description="1 (bad) to 5 (good); the chat page sends 1 or 5.")
    comment: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_control)] = ""


class FeedbackResponse(Reply):
    session_id: str
    turn: int
    rating: int
    recorded: bool = True


# -- catalog -------------------------------------------------------------------------------------------
class ProductFields(Strict):
    """Product columns of the import format (DESIGN section 3); validated by the importer itself."""

    name: ShortText | None = None
    brand: ShortText | None = None
    category: ShortText | None = None
    supplier_id: ShortText | None = None
    price: float | str | None = None
    currency: Annotated[str, StringConstraints(max_length=8)] | None = None
    stock: int | str | None = None
    description: LongText | None = None
    warranty_months: int | str | None = None
    rating: float | str | None = None
    status: Literal["active", "discontinued"] | None = None
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], AttrValue] | None = Field(
        None, max_length=200)


class ProductPut(ProductFields):
    name: ShortText


class ProductOut(Reply):
    sku: str
    name: str | None = None
    brand: str | None = None
    category: str | None = None
    supplier_id: str | None = None
    price: float | None = None
    currency: str | None = None
    stock: int | None = None
    description: str | None = None
    warranty_months: int | None = None
    rating: float | None = None
    status: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    updated_at: str | None = None


class ProductChange(Reply):
    product: ProductOut | None
    created: bool = False
    changed: bool = True
    catalog_version: int | None = None
    warnings: list[dict[str, Any]] = Field(default_factory=list)


class ImportProgress(Reply):
    percent: float = Field(0.0, description="Share of the uploaded bytes read (strict mode reads them twice).")
    bytes_read: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    rows: int = Field(0, description="Rows in the report, once done.")


class ImportJob(Reply):
    job_id: str
    status: Literal["queued", "running", "done", "failed"]
    key_id: str | None = Field(None, description="The id of the API key that started the import.")
    strict: bool = False
    dry_run: bool = False
    create_missing: bool = Field(False, description="Brands and categories products name but nothing "
                                 "defines are created even under strict.")
    types: dict[str, str] = Field(default_factory=dict, description="File types given in the request, by file name.")
    files: list[str] = Field(default_factory=list)
    created_at: str
    updated_at: str
    progress: ImportProgress = Field(default_factory=ImportProgress)
    report: ImportReport | None = Field(None, description="The importer's per-row report once done.")
    error: ErrorBody | None = None


# Shop examples (nlu/example_store.py): the per-row rules (known intent, non-empty text of at most
# 500 characters, no duplicates or contradictions) are the store's, so they come back per row.
class ShopExampleIn(Strict):
    text: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, description="A customer message (at most 500 characters once spaces are collapsed).")
    intent: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        None, description="One of the intent names (DESIGN section 4).")


class ShopExamplesAdd(Strict):
    examples: list[ShopExampleIn] = Field(min_length=1, max_length=5000)
    strict: bool = Field(False, description="Write nothing unless every row is good.")


class ShopExampleOut(BaseModel):
    id: str = Field(description="First 12 hex digits of the SHA-256 of the normalised text.")
    text: str
    intent: str
    added_at: str | None = None
    added_by: str | None = Field(None, description="The API key id that added it, or `cli`.")


class ShopExampleList(BaseModel):
    version: int = Field(description="Bumped by every add or remove that changed something.")
    count: int
    examples: list[ShopExampleOut]


class ShopExampleRow(BaseModel):
    id: str
    text: str
    intent: str
    field: str = Field(description="`file:line` (header = line 1) or `examples[i]`.")
    file: str | None = None
    line: int | None = None
    index: int | None = None


class ShopExampleProblem(BaseModel):
    field: str = Field(description="`file:line` (header = line 1) or `examples[i]`.")
    message: str
    kind: Literal["unreadable", "invalid", "duplicate", "contradiction"]
    file: str | None = None
    line: int | None = None
    index: int | None = None
    text: str | None = None
    intent: str | None = None
    other_intent: str | None = Field(None, description="Contradictions: the intent the other row or the stored "
                                                       "example gives the same text.")
    other_line: int | None = None
    other_id: str | None = Field(None, description="Contradictions with a stored example: its id.")


class ShopExamplesReport(BaseModel):
    strict: bool
    written: bool
    rows: int
    added: list[ShopExampleRow]
    unchanged: list[ShopExampleRow]
    errors: list[ShopExampleProblem]
    contradictions: list[ShopExampleProblem]
    version: int


class ShopExampleRemoved(BaseModel):
    id: str
    removed: bool = True
    version: int


# -- graph / analytics ---------------------------------------------------------------------------------
class GraphQueryRequest(Strict):
    cypher: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    params: dict[Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
                 Any] = Field(default_factory=dict, max_length=100)
    limit: int | None = Field(None, ge=1, le=100_000, description="Row cap, at most ANALYST_ROW_LIMIT.")


class GraphQueryResponse(Reply):
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool
    elapsed_ms: float


class LabelInfo(Reply):
    label: str
    key: str
    count: int | None = None
    fulltext: list[str] = Field(default_factory=list)
    indexed: list[str] = Field(default_factory=list)


class RelInfo(Reply):
    type: str
    source: str
    target: str
    count: int | None = None


class GraphSchemaResponse(Reply):
    backend: str
    labels: list[LabelInfo]
    relationships: list[RelInfo]


class AnalyticsResponse(Reply):
    report: str
    generated_at: str
    params: dict[str, Any] = Field(default_factory=dict)
    rows: list[dict[str, Any]]


# -- admin / dev ---------------------------------------------------------------------------------------
class HealthResponse(Reply):
    status: Literal["ok"]


class ReadyResponse(Reply):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Any]


class DevTokenRequest(Strict):
    customer_id: CustomerId
    ttl_s: int = Field(3600, ge=60, le=86_400)


class AuditEntry(Reply):
    """One catalog write (kg/audit.py)."""

    id: str = Field(description="The change's id in the log (`<time>-<n>.<n>`, time-ordered); as a cursor it "
                               "reads on from there.")
    at: str | None = Field(description="When it was written (UTC).")
    key_id: str | None = Field(description="The API key that wrote it; `cli:<user>` for the key-less local command.")
    route: str | None = Field(description="The route of a single-product or shop-example write.")
    job_id: str | None = Field(description="The import job that wrote it.")
    file: str | None = Field(description="The import file the row came from.")
    line: int | None = Field(description="The row's physical line in that file (the header is line 1).")
    label: str = Field(description="Product, Order, Customer, ..., OrderItem (an order's item), ShopExample.")
    node: str = Field(description="The node's key: the sku, order id, ...; `order_id/sku` for an order item.")
    action: Literal["created", "updated", "deleted"]
    old: dict[str, Any] | None = Field(description="The fields that changed, as they were (null when created).")
    new: dict[str, Any] | None = Field(description="The fields that changed, as they are now (null when deleted).")


class AuditPage(Reply):
    entries: list[AuditEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for older entries; null when there are none.")


class DevTokenResponse(Reply):
    token: str
    customer_id: str
    expires_in: int


class DevConfigResponse(Reply):
    api_key: str | None
    customers: list[str]
    sign_in: bool


# -- reading bodies ------------------------------------------------------------------------------------
def _check_shape(value: Any, max_depth: int) -> None:
    """Depth, string sizes and value count, iteratively (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        v, depth = stack.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES:
            raise PayloadTooLarge("the JSON body has too many values")
        if isinstance(v, dict):
            if depth > max_depth:
                raise InvalidJSON(f"the JSON body is nested deeper than {max_depth} levels")
            for k, x in v.items():
                if len(k) > MAX_STRING_CHARS:
                    raise PayloadTooLarge("a JSON key is too long")
                stack.append((x, depth + 1))
        elif isinstance(v, list):
            if depth > max_depth:
                raise InvalidJSON(f"the JSON body is nested deeper than {max_depth} levels")
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, str) and len(v) > MAX_STRING_CHARS:
            raise PayloadTooLarge(f"a JSON string is longer than {MAX_STRING_CHARS} characters")


def read_json(settings: Any) -> Any:
    """The request's JSON value: 415 for another media type, 413 when too large, 400 when
    malformed or too deep. Read once per request (the rate limiter may read it before the view)."""
    if "json_body" in g:
        return g.json_body
    mimetype = request.mimetype or ""
    if not (mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))):
        raise UnsupportedMediaType("the body must be application/json", details={"got": mimetype[:100] or None})
    limit = settings.api_max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the JSON body is larger than {limit} bytes")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"the JSON body is larger than {limit} bytes")
    if not raw.strip():
        raise InvalidJSON("the body is empty")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON("the body is not valid JSON", details={"position": getattr(exc, "pos", None)}) from None
    _check_shape(value, settings.api_max_json_depth)
    g.json_body = value
    return value


def parse_body(model: type[M], settings: Any) -> M:
    return model.model_validate(read_json(settings))


def query_bool(name: str, default: bool = False) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no", ""):
        return False
    raise BadRequest(f"query parameter `{name}` must be true or false")


def query_int(name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter `{name}` must be an integer") from None
    if not lo <= v <= hi:
        raise BadRequest(f"query parameter `{name}` must be between {lo} and {hi}")
    return v
